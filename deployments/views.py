"""Deployments pages for instructors: what can run, what runs, and each
run's steps as they happen. Starting anything asks for a recent passkey
confirmation; these views never talk to the engine themselves."""

from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from accounts.models import User
from accounts.reauth import account_required, recent_passkey_required
from config.errors import ApplicationError
from deployments import selectors, services
from deployments.api.views import ImageDeploySerializer, service_logs
from deployments.engine import engine_missing
from deployments.examples import ExampleInvalid, example_list
from deployments.github_actions import workflow_export
from deployments.models import Deployment, Run


def instructor_required[View: Callable[..., HttpResponse]](view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not getattr(request.user, "is_instructor", False):
            raise ApplicationError(services.NOT_INSTRUCTOR, status=HTTPStatus.FORBIDDEN)
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _account(request: HttpRequest) -> User:
    if not isinstance(request.user, User):
        raise TypeError("account_required lets only accounts through.")
    return request.user


@require_safe
@account_required
@instructor_required
def index(request: HttpRequest) -> HttpResponse:
    return _index_render(request)


def _index_render(
    request: HttpRequest,
    *,
    refusal: ApplicationError | None = None,
    status: int = HTTPStatus.OK,
) -> HttpResponse:
    account = _account(request)
    targets = sorted(settings.DEPLOYMENTS_TARGETS)
    examples = []
    valid, invalid = example_list()
    for example in valid:
        taken = selectors.targets_taken(name=example.slug, account=account)
        updated = selectors.secrets_updated(example=example.slug)
        examples.append(
            {
                "example": example,
                "targets": [(target, taken.get(target)) for target in targets],
                "free": [target for target in targets if target not in taken],
                "secrets": [(name, updated.get(name)) for name in example.secret_names],
            }
        )
    active_run = refusal.extra.get("active_run") if refusal else None
    return render(
        request,
        "deployments/index.html",
        {
            "missing": engine_missing(),
            "examples": examples,
            "invalid_examples": invalid,
            "deployments": [
                (deployment, deployment.managed_by(account))
                for deployment in selectors.deployments_list()
            ],
            "runs": selectors.runs_recent(),
            "targets": targets,
            "builders": Run.Builder.choices,
            "registry": settings.DEPLOYMENTS_REGISTRY,
            "refusal": refusal.message if refusal else "",
            "active_run": selectors.run_find(run_id=active_run) if active_run else None,
            # What the image form was sent with, so a refusal keeps it.
            "sent": request.POST if request.method == "POST" else {},
        },
        status=status,
    )


def refused_on_the_page[View: Callable[..., HttpResponse]](view: View) -> View:
    """A start the service refuses (bad input, someone else's deployment, a
    run already active, no engine) comes back to the deployments page with
    the reason on top, a link to the active run if that was it, and the
    image form as it was sent, under the refusal's status."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ApplicationError as refusal:
            return _index_render(request, refusal=refusal, status=refusal.status)

    return wrapper  # type: ignore[return-value]


@require_POST
@recent_passkey_required
@instructor_required
@refused_on_the_page
def example_run(request: HttpRequest, slug: str) -> HttpResponse:
    run = services.run_start(
        account=_account(request),
        kind=Run.Kind.EXAMPLE,
        subject=slug,
        example=slug,
        target=request.POST.get("target", "local"),
        builder=request.POST.get("builder", Run.Builder.BUILDAH),
    )
    return redirect(run)


@require_POST
@recent_passkey_required
@instructor_required
@refused_on_the_page
def example_secret(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    """Set one of an example's secrets from its form on the deployments
    page; the value is never shown again, here or anywhere."""
    try:
        services.example_secret_set(
            account=_account(request),
            example=slug,
            name=name,
            value=request.POST.get("value", ""),
        )
    except ExampleInvalid as error:
        raise ApplicationError(str(error), status=HTTPStatus.NOT_FOUND) from None
    messages.success(
        request, f"{name} of {slug} is set; the next run of the example uses it."
    )
    return redirect("deployments:index")


@require_POST
@recent_passkey_required
@instructor_required
@refused_on_the_page
def image_deploy(request: HttpRequest) -> HttpResponse:
    serializer = ImageDeploySerializer(data=request.POST)
    if not serializer.is_valid():
        problems = "; ".join(
            f"{field}: {' '.join(str(message) for message in messages)}"
            for field, messages in serializer.errors.items()
        )
        raise ApplicationError(f"Not deployed: {problems}")
    run = services.image_deploy_start(
        account=_account(request), **serializer.validated_data
    )
    return redirect(run)


@require_POST
@recent_passkey_required
@instructor_required
@refused_on_the_page
def deployment_action(
    request: HttpRequest, deployment_id: int, kind: str
) -> HttpResponse:
    deployment = get_object_or_404(Deployment, pk=deployment_id)
    run = services.deployment_action_start(
        account=_account(request), deployment=deployment, kind=kind
    )
    return redirect(run)


@require_safe
@account_required
@instructor_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_find(run_id=run_id)
    if run is None:
        raise Http404(f"There is no run {run_id}.")
    return render(
        request,
        "deployments/run.html",
        {
            "run": run,
            "run_json": selectors.run_as_json(run, account=_account(request)),
            "missing": engine_missing(),
            "queued_seconds": settings.DEPLOYMENTS_RUN_QUEUED_SECONDS,
        },
    )


@require_safe
@account_required
@instructor_required
def deployment_logs(request: HttpRequest, deployment_id: int) -> HttpResponse:
    deployment = get_object_or_404(Deployment, pk=deployment_id)
    services.deployment_owner_check(
        account=_account(request), deployment=deployment, doing="read its logs"
    )
    return render(
        request,
        "deployments/logs.html",
        {"deployment": deployment, "logs": service_logs(deployment)},
    )


@require_safe
@account_required
@instructor_required
def example_workflow(request: HttpRequest, slug: str) -> HttpResponse:
    example = selectors.example_for_lesson(slug=slug)
    if example is None:
        raise Http404(f"Lesson {slug!r} has no worked example.")
    response = HttpResponse(workflow_export(example), content_type="text/yaml")
    response["Content-Disposition"] = f'attachment; filename="deploy-{slug}.yml"'
    return response
