from http import HTTPStatus
from typing import Any

from django.contrib.auth import update_session_auth_hash
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.limits import answers_limited, options_limited
from accounts.models import ApiToken, Passkey
from accounts.reauth import RecentPasskey, mark_session_fresh
from accounts.views import account_of


class PasskeySerializer(serializers.ModelSerializer[Passkey]):
    class Meta:
        model = Passkey
        fields = ["id", "name", "created", "last_used"]


class AccountView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "Account",
            {
                "username": serializers.CharField(),
                "role": serializers.CharField(),
                "passkeys": PasskeySerializer(many=True),
            },
        )
    )
    def get(self, request: Request) -> Response:
        user = account_of(request)
        return Response(
            {
                "username": user.username,
                "role": user.role,
                "passkeys": PasskeySerializer(user.passkeys.all(), many=True).data,
            }
        )


def _binding(request: Request) -> dict[str, Any]:
    """A challenge made through the API is bound to the token that asked,
    or else to the browser session."""
    if isinstance(request.auth, ApiToken):
        return {"token": request.auth}
    if not request.session.session_key:
        request.session.save()
    return {"session_key": request.session.session_key}


@method_decorator(options_limited, name="post")
class ReauthenticateOptionsView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request) -> Response:
        options = services.reauth_begin(user=account_of(request), **_binding(request))
        return Response(options)


@method_decorator(answers_limited, name="post")
class ReauthenticateVerifyView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=inline_serializer("Assertion", {"credential": serializers.DictField()}),
        responses={200: dict},
    )
    def post(self, request: Request) -> Response:
        credential = (
            request.data.get("credential") if isinstance(request.data, dict) else None
        )
        if not isinstance(credential, dict):
            return Response(
                {"detail": "The request needs a 'credential' object."},
                status=HTTPStatus.BAD_REQUEST,
            )
        services.reauth_complete(
            user=account_of(request),
            credential=credential,
            **_binding(request),
        )
        if not isinstance(request.auth, ApiToken):
            mark_session_fresh(request._request)
        return Response({"detail": "Passkey confirmed."})


class PasskeyDetailView(APIView):
    permission_classes = [IsAuthenticated, RecentPasskey]

    def delete(self, request: Request, pk: int) -> Response:
        user = account_of(request)
        passkey = get_object_or_404(Passkey, pk=pk, user=user)
        services.passkey_remove(passkey=passkey)
        if not isinstance(request.auth, ApiToken):
            # Every other session of the account has ended; the one asking
            # stays, as on the account page.
            user.refresh_from_db()
            update_session_auth_hash(request._request, user)
        return Response(status=HTTPStatus.NO_CONTENT)
