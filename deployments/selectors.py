"""Reads for deployments' pages and API."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from deployments.examples import Example, ExampleInvalid, example_exists, example_load
from deployments.models import Deployment, Run, Secret, Step

if TYPE_CHECKING:
    from accounts.models import User

RECENT_RUNS = 20


def runs_recent(*, limit: int = RECENT_RUNS) -> QuerySet[Run]:
    return Run.objects.select_related("started_by").order_by("-created")[:limit]


def run_find(*, run_id: int) -> Run | None:
    return Run.objects.select_related("started_by").filter(pk=run_id).first()


def deployments_list() -> QuerySet[Deployment]:
    return Deployment.objects.select_related("last_run", "owner").order_by(
        "name", "target"
    )


def deployment_find(*, deployment_id: int) -> Deployment | None:
    return Deployment.objects.filter(pk=deployment_id).first()


def targets_taken(*, name: str, account: "User") -> dict[str, str]:
    """The targets on which a deployment of this name belongs to someone
    else, so that ``account`` may not deploy under it there, each with the
    owner's name ("" for a deployment with no owner on record)."""
    return {
        deployment.target: deployment.owner.username if deployment.owner else ""
        for deployment in Deployment.objects.filter(name=name).select_related("owner")
        if not deployment.claimable_by(account)
    }


def secrets_updated(*, example: str) -> dict[str, datetime]:
    """When each of an example's secrets was last set; never their values."""
    return dict(Secret.objects.filter(example=example).values_list("name", "updated"))


def example_for_lesson(*, slug: str) -> Example | None:
    if not example_exists(slug):
        return None
    try:
        return example_load(slug)
    except ExampleInvalid:
        return None


def runs_as_json(runs: QuerySet[Run], *, account: "User") -> list[dict[str, Any]]:
    """``run_as_json`` of each run, in three queries however many there are."""
    runs_read = list(runs.prefetch_related("steps"))
    deployments = {
        (deployment.name, deployment.target): deployment
        for deployment in Deployment.objects.filter(
            name__in={run.subject for run in runs_read}
        ).select_related("owner")
    }
    return [
        _run_json(
            run,
            deployment=deployments.get((run.subject, run.target)),
            account=account,
        )
        for run in runs_read
    ]


def run_as_json(run: Run, *, account: "User | None" = None) -> dict[str, Any]:
    """A run and its steps as the run page and the API show them; given the
    account asking, its deployment says whether that account may act on it.
    Secret values never reach here: step logs and proofs were masked as
    written."""
    deployment = (
        Deployment.objects.filter(name=run.subject, target=run.target)
        .select_related("owner")
        .first()
    )
    return _run_json(run, deployment=deployment, account=account)


def _run_json(
    run: Run, *, deployment: Deployment | None, account: "User | None"
) -> dict[str, Any]:
    steps = list(run.steps.all())
    failed = [step.name for step in steps if step.status == Step.Status.FAILED]
    return {
        "id": run.pk,
        "url": run.get_absolute_url(),
        "kind": run.kind,
        "subject": run.subject,
        "target": run.target,
        "example": run.example,
        "image": run.image,
        "builder": run.builder,
        "status": run.status,
        "active": run.active,
        "digest": run.digest,
        "source_sha256": run.source_hash,
        "error": run.error,
        "started_by": run.started_by.username,
        "created": run.created.isoformat(),
        "started": run.started.isoformat() if run.started else None,
        "finished": run.finished.isoformat() if run.finished else None,
        "failed_step": failed[0] if failed else None,
        "deployment": (
            deployment_as_json(deployment, account=account) if deployment else None
        ),
        "steps": [
            {
                "name": step.name,
                "status": step.status,
                "progress": step.progress,
                "duration_ms": step.duration_ms,
                "proof": step.proof,
                "log": step.log,
            }
            for step in steps
        ],
    }


def deployment_as_json(
    deployment: Deployment, *, account: "User | None" = None
) -> dict[str, Any]:
    """A deployment as the pages and the API show it; given the account
    asking, ``managed`` says whether it may roll it back, tear it down or
    read its logs."""
    described = {
        "id": deployment.pk,
        "name": deployment.name,
        "target": deployment.target,
        "example": deployment.example,
        "status": deployment.status,
        "image": f"{deployment.repository}@{deployment.digest}"
        if deployment.digest
        else "",
        "previous_digest": deployment.previous_digest,
        "previous_image": (
            f"{deployment.previous_repository or deployment.repository}"
            f"@{deployment.previous_digest}"
            if deployment.previous_digest
            else ""
        ),
        "container": deployment.container_name,
        "url": deployment.url,
        "last_run": deployment.last_run_id,
        "owner": deployment.owner.username if deployment.owner else None,
    }
    if account is not None:
        described["managed"] = deployment.managed_by(account)
    return described
