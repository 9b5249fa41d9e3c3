"""The deployments API: start runs, read them, roll back and tear down.

Starting anything needs an instructor with a fresh passkey assertion
(``accounts.reauth.RecentPasskey``). No answer ever holds a secret value.
"""

from http import HTTPStatus
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.reauth import RecentPasskey
from config.errors import ApplicationError
from deployments import selectors, services
from deployments.engine import EngineError
from deployments.examples import ExampleInvalid
from deployments.models import Deployment, Run

LOGS_WAIT_SECONDS = 15
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,47}$"


class Instructor(BasePermission):
    message = services.NOT_INSTRUCTOR

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(getattr(request.user, "is_instructor", False))


def _account(request: Request) -> User:
    if not isinstance(request.user, User):
        raise TypeError("The permissions let only accounts through.")
    return request.user


class TargetField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value not in settings.DEPLOYMENTS_TARGETS:
            raise serializers.ValidationError(
                f"There is no target {value!r}; targets: "
                f"{', '.join(sorted(settings.DEPLOYMENTS_TARGETS))}."
            )
        return value


class ImageDeploySerializer(serializers.Serializer[dict[str, Any]]):
    image = serializers.CharField(max_length=512)
    name = serializers.RegexField(
        NAME_PATTERN,
        max_length=48,
        error_messages={
            "invalid": "A name is 1 to 48 lower-case letters, digits and hyphens, "
            "starting with a letter or digit."
        },
    )
    target = TargetField(default="local")
    port = serializers.IntegerField(min_value=1, max_value=65535, default=8080)
    health_path = serializers.RegexField(
        r"^/[A-Za-z0-9._~/-]{0,199}$",
        default="/",
        error_messages={"invalid": "health_path is a path starting with /."},
    )


class ExampleRunSerializer(serializers.Serializer[dict[str, Any]]):
    target = TargetField(default="local")
    builder = serializers.ChoiceField(choices=Run.Builder.choices, default="buildah")


class DeploymentsView(APIView):
    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [IsAuthenticated(), Instructor(), RecentPasskey()]
        return [IsAuthenticated(), Instructor()]

    def get(self, request: Request) -> Response:
        return Response(
            [
                selectors.deployment_as_json(item, account=_account(request))
                for item in selectors.deployments_list()
            ]
        )

    def post(self, request: Request) -> Response:
        """Deploy an image already in an allowed registry, by reference
        (resolved to a digest first) and container name."""
        serializer = ImageDeploySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.image_deploy_start(
            account=_account(request), **serializer.validated_data
        )
        return Response(
            selectors.run_as_json(run, account=_account(request)),
            status=HTTPStatus.ACCEPTED,
        )


class ExampleRunsView(APIView):
    permission_classes = [IsAuthenticated, Instructor, RecentPasskey]

    def post(self, request: Request, slug: str) -> Response:
        serializer = ExampleRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.run_start(
            account=_account(request),
            kind=Run.Kind.EXAMPLE,
            subject=slug,
            example=slug,
            **serializer.validated_data,
        )
        return Response(
            selectors.run_as_json(run, account=_account(request)),
            status=HTTPStatus.ACCEPTED,
        )


class SecretSerializer(serializers.Serializer[dict[str, Any]]):
    value = serializers.CharField(
        min_length=8, max_length=4096, trim_whitespace=False, write_only=True
    )


class ExampleSecretView(APIView):
    """Set one of an example's secrets. The answer never holds the value."""

    permission_classes = [IsAuthenticated, Instructor, RecentPasskey]

    def put(self, request: Request, slug: str, name: str) -> Response:
        serializer = SecretSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.example_secret_set(
                account=_account(request),
                example=slug,
                name=name,
                value=serializer.validated_data["value"],
            )
        except ExampleInvalid as error:
            raise ApplicationError(str(error), status=HTTPStatus.NOT_FOUND) from None
        return Response(status=HTTPStatus.NO_CONTENT)


class RunsView(APIView):
    permission_classes = [IsAuthenticated, Instructor]

    def get(self, request: Request) -> Response:
        account = _account(request)
        return Response(
            selectors.runs_as_json(selectors.runs_recent(), account=account)
        )


class RunView(APIView):
    permission_classes = [IsAuthenticated, Instructor]

    def get(self, request: Request, run_id: int) -> Response:
        run = selectors.run_find(run_id=run_id)
        if run is None:
            raise ApplicationError(
                f"There is no run {run_id}.", status=HTTPStatus.NOT_FOUND
            )
        return Response(selectors.run_as_json(run, account=_account(request)))


class DeploymentActionView(APIView):
    permission_classes = [IsAuthenticated, Instructor, RecentPasskey]
    kind = ""

    def post(self, request: Request, deployment_id: int) -> Response:
        deployment = get_object_or_404(Deployment, pk=deployment_id)
        run = services.deployment_action_start(
            account=_account(request), deployment=deployment, kind=self.kind
        )
        return Response(
            selectors.run_as_json(run, account=_account(request)),
            status=HTTPStatus.ACCEPTED,
        )


class DeploymentLogsView(APIView):
    permission_classes = [IsAuthenticated, Instructor]

    def get(self, request: Request, deployment_id: int) -> Response:
        deployment = get_object_or_404(Deployment, pk=deployment_id)
        services.deployment_owner_check(
            account=_account(request), deployment=deployment, doing="read its logs"
        )
        return Response({"name": deployment.name, "logs": service_logs(deployment)})


def service_logs(deployment: Deployment) -> str:
    """The service's own logs, read by the worker (web processes never talk
    to the engine)."""
    from deployments.tasks import deployment_logs

    if deployment.status != Deployment.Status.LIVE:
        raise ApplicationError(
            f"{deployment.name} on {deployment.target} is torn down: no service "
            "runs, so there are no logs to read.",
            status=HTTPStatus.CONFLICT,
        )
    try:
        return str(deployment_logs.delay(deployment.pk).get(timeout=LOGS_WAIT_SECONDS))
    except CeleryTimeout:
        raise ApplicationError(
            "No worker answered in time; is a Celery worker running?",
            status=HTTPStatus.SERVICE_UNAVAILABLE,
        ) from None
    except EngineError as error:
        raise ApplicationError(
            str(error), status=HTTPStatus.SERVICE_UNAVAILABLE
        ) from None
