"""Re-authentication before sensitive actions: one mechanism for views and
API views.

A passkey assertion with user verification counts as fresh for
``ACCOUNTS_REAUTH_SECONDS`` (5 minutes by default). In a browser the time is
kept in the session; for an API token, on the token itself, and only an
assertion made through the API for that token counts.
"""

import time
from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import ApiToken
from config.errors import wants_json

SESSION_KEY = "passkey_verified_at"


def mark_session_fresh(request: HttpRequest) -> None:
    request.session[SESSION_KEY] = time.time()


def session_is_fresh(request: HttpRequest) -> bool:
    verified_at = request.session.get(SESSION_KEY)
    if not isinstance(verified_at, int | float):
        return False
    return time.time() - verified_at <= settings.ACCOUNTS_REAUTH_SECONDS


def token_is_fresh(token: ApiToken) -> bool:
    if token.reauthenticated is None:
        return False
    age = timezone.now() - token.reauthenticated
    return age.total_seconds() <= settings.ACCOUNTS_REAUTH_SECONDS


def recent_passkey_required[View: Callable[..., HttpResponse]](view: View) -> View:
    """For page views. Without a fresh assertion, a page goes to the
    re-authentication page and comes back after it; a JSON request gets 401
    saying where to go. A form post comes back to the page it was sent from.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and session_is_fresh(request):
            return view(request, *args, **kwargs)

        if request.method == "GET":
            back_to = request.get_full_path()
        else:
            back_to = request.headers.get("Referer") or reverse("accounts:account")
        step = "reauthenticate" if request.user.is_authenticated else "signin"
        url = f"{reverse(f'accounts:{step}')}?{urlencode({'next': back_to})}"
        if wants_json(request):
            return JsonResponse(
                {"detail": "Confirm with your passkey first.", step: url},
                status=HTTPStatus.UNAUTHORIZED,
            )
        return redirect(url)

    return wrapper  # type: ignore[return-value]


def account_required[View: Callable[..., HttpResponse]](view: View) -> View:
    """Like ``login_required``, but a JSON request gets 401 JSON rather than
    a redirect to a page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        url = f"{reverse('accounts:signin')}?{urlencode({'next': request.get_full_path()})}"
        if wants_json(request):
            return JsonResponse(
                {"detail": "Sign in first.", "signin": url},
                status=HTTPStatus.UNAUTHORIZED,
            )
        return redirect(url)

    return wrapper  # type: ignore[return-value]


class RecentPasskey(BasePermission):
    """For API views: the session or the token must have a fresh passkey
    assertion. A token on its own never passes."""

    message = (
        "This action needs a fresh passkey assertion: POST to "
        "/api/account/reauthenticate/options, then /api/account/reauthenticate/verify."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if isinstance(request.auth, ApiToken):
            return token_is_fresh(request.auth)
        return session_is_fresh(request._request)
