"""Writes for deployments: starting runs, carrying them out on the worker,
secrets, and the reconciliation of runs a dead worker left behind."""

import contextlib
import logging
import secrets
import shutil
from datetime import datetime, timedelta
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from accounts.models import User
from config.errors import ApplicationError
from deployments import buildah, engine, pipeline, registry
from deployments.examples import ExampleInvalid, example_load
from deployments.keys import SecretUnreadable, secret_open, secret_seal
from deployments.models import Deployment, Run, Secret, Step
from deployments.references import ReferenceInvalid, reference_parse
from deployments.signing import SignatureRefused

logger = logging.getLogger(__name__)

# What a step may fail with: each carries a message for the run page.
STEP_ERRORS = (
    pipeline.StepFailed,
    engine.EngineError,
    buildah.BuildahError,
    registry.RegistryError,
    SignatureRefused,
    ExampleInvalid,
    ReferenceInvalid,
    SecretUnreadable,
)
SECRET_BYTES = 24
# Said wherever someone who is not an instructor is refused: how one becomes
# one is not something they could find on the site otherwise.
NOT_INSTRUCTOR = (
    "Only instructors run deployments; the site's operator makes an account "
    "an instructor with `python manage.py set_role NAME instructor`."
)


def _refuse_without_engine() -> None:
    missing = engine.engine_missing()
    if missing:
        raise ApplicationError(
            "Deployments cannot run on this machine; missing: "
            + "; ".join(missing)
            + ". `make provision` installs and starts them on Debian.",
            status=HTTPStatus.SERVICE_UNAVAILABLE,
        )


def _target_check(target: str) -> None:
    if target not in settings.DEPLOYMENTS_TARGETS:
        raise ApplicationError(
            f"There is no target {target!r}; targets: "
            f"{', '.join(sorted(settings.DEPLOYMENTS_TARGETS))}."
        )


def run_start(
    *,
    account: User,
    kind: str,
    subject: str,
    target: str = "local",
    example: str = "",
    image: str = "",
    port: int | None = None,
    health_path: str = "",
    builder: str = Run.Builder.BUILDAH,
) -> Run:
    """Record a run with its steps and queue it for the worker. A second
    active run of the same subject on the same target is refused."""
    if not account.is_instructor:
        raise ApplicationError(NOT_INSTRUCTOR, status=HTTPStatus.FORBIDDEN)
    _target_check(target)
    deployment = (
        Deployment.objects.filter(name=subject, target=target)
        .select_related("owner")
        .first()
    )
    new_deploy = kind in (Run.Kind.EXAMPLE, Run.Kind.IMAGE)
    if deployment is not None and not (new_deploy and deployment.claimable_by(account)):
        deployment_owner_check(
            account=account, deployment=deployment, doing=ACTIONS[kind]
        )
    _refuse_without_engine()
    if kind == Run.Kind.EXAMPLE:
        try:
            example_load(example)
        except ExampleInvalid as error:
            raise ApplicationError(str(error), status=HTTPStatus.NOT_FOUND) from None
    run = Run(
        kind=kind,
        subject=subject,
        target=target,
        example=example,
        image=image,
        port=port,
        health_path=health_path,
        builder=builder,
        started_by=account,
    )
    try:
        run.full_clean(validate_constraints=False)
    except ValidationError as error:
        raise ApplicationError(
            "; ".join(
                f"{field}: {' '.join(messages)}"
                for field, messages in error.message_dict.items()
            )
        ) from None
    if kind == Run.Kind.EXAMPLE:
        example_secrets_ensure(example=example)
    # With no worker running, the periodic reconciliation never runs either:
    # a run left queued too long is failed here, so that this one can go.
    runs_queued_expire(subject=subject, target=target)
    try:
        with transaction.atomic():
            run.save()
            Step.objects.bulk_create(
                Step(run=run, position=position, name=name)
                for position, (name, _) in enumerate(pipeline.STEPS[kind], start=1)
            )
    except IntegrityError:
        active = Run.objects.filter(
            subject=subject, target=target, status__in=Run.ACTIVE
        ).first()
        raise ApplicationError(
            f"A run of {subject} on {target} is already active"
            + (f" (run {active.pk}); wait for it to end." if active else "."),
            status=HTTPStatus.CONFLICT,
            extra={"active_run": active.pk if active else None},
        ) from None
    logger.info("Run %s queued: %s %s on %s", run.pk, kind, subject, target)
    from deployments.tasks import run_execute

    run_execute.delay_on_commit(run.pk)  # type: ignore[attr-defined]
    return run


ACTIONS: dict[str, str] = {
    Run.Kind.EXAMPLE: "deploy under its name",
    Run.Kind.IMAGE: "deploy under its name",
    Run.Kind.ROLLBACK: "roll it back",
    Run.Kind.TEARDOWN: "tear it down",
    "secret": "set its example's secrets",
}


def deployment_owner_check(
    *, account: User, deployment: Deployment, doing: str
) -> None:
    """Refuse, with 403, anyone but the deployment's owner or staff."""
    if deployment.managed_by(account):
        return
    owner = (
        f"belongs to {deployment.owner.username}; only they or staff may"
        if deployment.owner
        else "has no owner on record; only staff may"
    )
    raise ApplicationError(
        f"{deployment.name} on {deployment.target} {owner} {doing}.",
        status=HTTPStatus.FORBIDDEN,
    )


def image_deploy_start(
    *, account: User, image: str, name: str, target: str, port: int, health_path: str
) -> Run:
    """Queue the deployment of an image already in an allowed registry.
    What the web process can judge without the registry, it refuses here:
    the pipeline's check step would only fail the run later."""
    try:
        reference = reference_parse(image)
    except ReferenceInvalid as error:
        raise ApplicationError(f"image: {error}") from None
    allowed = settings.DEPLOYMENTS_ALLOWED_REGISTRIES
    if reference.registry not in allowed:
        raise ApplicationError(
            f"image: registry-not-allowed: {reference.registry} is not an allowed "
            f"registry ({', '.join(allowed)})."
        )
    if not reference.digest and reference.registry != settings.DEPLOYMENTS_REGISTRY:
        raise ApplicationError(
            f"image: only images in {settings.DEPLOYMENTS_REGISTRY} can be named by "
            f"tag; give {reference.name} by digest."
        )
    return run_start(
        account=account,
        kind=Run.Kind.IMAGE,
        subject=name,
        target=target,
        image=image,
        port=port,
        health_path=health_path,
    )


def deployment_action_start(*, account: User, deployment: Deployment, kind: str) -> Run:
    # Whose it is comes first: anyone else learns nothing of its state.
    deployment_owner_check(account=account, deployment=deployment, doing=ACTIONS[kind])
    if kind == Run.Kind.ROLLBACK and deployment.status != Deployment.Status.LIVE:
        # Rolling back would start the image from before the last one.
        raise ApplicationError(
            f"{deployment.name} is torn down: nothing serves to roll back from; "
            "run it again instead.",
            status=HTTPStatus.CONFLICT,
        )
    if kind == Run.Kind.ROLLBACK and not deployment.previous_digest:
        raise ApplicationError(
            f"{deployment.name} has no earlier healthy digest to roll back to.",
            status=HTTPStatus.CONFLICT,
        )
    if kind == Run.Kind.TEARDOWN and deployment.status != Deployment.Status.LIVE:
        raise ApplicationError(
            f"{deployment.name} is already torn down.", status=HTTPStatus.CONFLICT
        )
    # An example's port and health path come from its manifest; an image's
    # were given when it was deployed, and a roll back keeps them.
    image = not deployment.example
    return run_start(
        account=account,
        kind=kind,
        subject=deployment.name,
        target=deployment.target,
        example=deployment.example,
        port=deployment.port if image and deployment.port else None,
        health_path=deployment.health_path if image else "",
    )


def example_secrets_ensure(*, example: str) -> None:
    """Give each secret the example needs a random value unless it has
    one, so that a first run works; instructors may set their own."""
    for name in example_load(example).secret_names:
        if not Secret.objects.filter(example=example, name=name).exists():
            secret_set(
                example=example, name=name, value=secrets.token_urlsafe(SECRET_BYTES)
            )


def example_secret_set(*, account: User, example: str, name: str, value: str) -> Secret:
    """Set one of an example's secrets, as someone who may deploy it.

    The example's deployments run with its secrets, so a value is set only
    by whoever may deploy under their names (their owner, or staff; anyone
    once they are torn down), and not while another account's run of the
    example is active: that run would pick up a value it did not choose."""
    # An example's deployments are named after it; one its owner replaced
    # with an image by reference no longer names the example, yet the next
    # run of the example under that name gets these values.
    deployments = Deployment.objects.filter(
        Q(example=example) | Q(name=example)
    ).select_related("owner")
    for deployment in deployments:
        if not deployment.claimable_by(account):
            deployment_owner_check(
                account=account, deployment=deployment, doing=ACTIONS["secret"]
            )
    active = (
        Run.objects.filter(example=example, status__in=Run.ACTIVE)
        .exclude(started_by=account)
        .select_related("started_by")
        .first()
    )
    if active is not None:
        raise ApplicationError(
            f"Run {active.pk} of {example}, started by "
            f"{active.started_by.username}, is active; set the secret once it "
            "ends.",
            status=HTTPStatus.CONFLICT,
            extra={"active_run": active.pk},
        )
    return secret_set(example=example, name=name, value=value)


def secret_set(*, example: str, name: str, value: str) -> Secret:
    if not 8 <= len(value) <= 4096:
        raise ApplicationError("A secret value is 8 to 4096 characters.")
    if value != value.strip():
        # A pasted line break would slip into the file the service reads,
        # and a value of spaces alone would match all over every image.
        raise ApplicationError(
            "A secret value does not begin or end with a space, tab or line break."
        )
    if name not in example_load(example).secret_names:
        raise ApplicationError(f"The example {example} needs no secret {name!r}.")
    secret, _ = Secret.objects.update_or_create(
        example=example,
        name=name,
        defaults={"sealed": secret_seal(value, scope=example, name=name)},
    )
    logger.info("Secret %s of example %s was set", name, example)
    return secret


def secret_values(*, example: str) -> dict[str, str]:
    if not example:
        return {}
    return {
        secret.name: secret_open(secret.sealed, scope=example, name=secret.name)
        for secret in Secret.objects.filter(example=example)
    }


def run_execute(*, run_id: int, worker: str) -> str:
    """Carry out a queued run, step by step, on the worker; return its final
    status. Two workers can never both claim it."""
    claimed = Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING,
        started=timezone.now(),
        heartbeat=timezone.now(),
        worker=worker,
    )
    if claimed != 1:
        logger.warning("Run %s was not queued; left alone", run_id)
        left = Run.objects.filter(pk=run_id).first()
        return left.status if left else "missing"
    run = Run.objects.select_related("started_by").get(pk=run_id)
    logger.info("Run %s started on %s", run.pk, worker)
    state = pipeline.Pass(run=run, secret_values={})
    state.workdir = settings.DEPLOYMENTS_DIR / "runs" / str(run.pk)
    shutil.rmtree(state.workdir, ignore_errors=True)
    state.workdir.mkdir(parents=True)
    try:
        state.secret_values = secret_values(example=run.example)
        for step in run.steps.order_by("position"):
            if not Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).exists():
                raise pipeline.StepFailed(f"{pipeline.ABANDONED}; it stops here.")
            _step_execute(state, step)
        state.chores_wait()
    except STEP_ERRORS as error:
        _run_fail(state, str(error))
    except Exception as error:
        logger.exception("Run %s broke", run.pk)
        _run_fail(state, f"The run broke unexpectedly: {type(error).__name__}.")
        raise
    else:
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.SUCCEEDED, finished=timezone.now()
        )
        logger.info("Run %s succeeded", run.pk)
    finally:
        state.chores_wait()
        shutil.rmtree(state.workdir, ignore_errors=True)
    return Run.objects.get(pk=run.pk).status


def _step_execute(state: pipeline.Pass, step: Step) -> None:
    handlers = dict(pipeline.STEPS[state.run.kind])
    state.step = step
    started = timezone.now()
    Step.objects.filter(pk=step.pk).update(status=Step.Status.RUNNING, started=started)
    try:
        handlers[step.name](state)
    except BaseException as error:
        message = str(error) if isinstance(error, STEP_ERRORS) else "The step broke."
        # The first line says what went wrong. The lines after it (a tool's
        # last output, a container's last log lines) mostly streamed into
        # the log already; the run's error, shown above the steps, keeps
        # them whole.
        state.log(f"failed: {message.splitlines()[0] if message else ''}")
        state.flush()
        _step_end(step, started, Step.Status.FAILED)
        raise
    state.flush()
    _step_end(step, started, Step.Status.SUCCEEDED)


def _step_end(step: Step, started: datetime, status: str) -> None:
    finished = timezone.now()
    milliseconds = int((finished - started).total_seconds() * 1000)
    steps = Step.objects.filter(pk=step.pk)
    steps.update(status=status, finished=finished, duration_ms=milliseconds)
    if status == Step.Status.SUCCEEDED:
        steps.update(progress=100)


def _run_fail(state: pipeline.Pass, message: str) -> None:
    run = state.run
    message = state.mask(message)
    failed = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        status=Run.Status.FAILED, finished=timezone.now(), error=message
    )
    if failed != 1:
        # The reconciliation failed it first; its reason stays, and this
        # says what the worker found on its way out.
        Run.objects.filter(pk=run.pk).update(
            error=Concat(F("error"), Value(f"\n{message}"))
        )
    run.steps.filter(status=Step.Status.PENDING).update(status=Step.Status.SKIPPED)
    if run.kind in {Run.Kind.EXAMPLE, Run.Kind.IMAGE, Run.Kind.ROLLBACK}:
        pipeline.failed_run_cleanup(state)
    logger.info("Run %s failed: %s", run.pk, message)


def runs_queued_expire(*, subject: str = "", target: str = "") -> list[int]:
    """Fail the runs no worker took within DEPLOYMENTS_RUN_QUEUED_SECONDS
    (of this subject and target, if given). Nothing of theirs ran, so
    nothing is left to remove; a worker that takes one later leaves it
    alone. Return their ids."""
    seconds = settings.DEPLOYMENTS_RUN_QUEUED_SECONDS
    waiting = Run.objects.filter(
        status=Run.Status.QUEUED,
        created__lt=timezone.now() - timedelta(seconds=seconds),
    )
    if subject:
        waiting = waiting.filter(subject=subject, target=target)
    failed = []
    for run in waiting:
        taken = Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
            status=Run.Status.FAILED,
            finished=timezone.now(),
            error=f"No worker took this run within {seconds} s; is a Celery worker "
            "running? The reconciliation marked it failed so that a new run can "
            "start.",
        )
        if taken != 1:
            continue
        run.steps.filter(status=Step.Status.PENDING).update(status=Step.Status.SKIPPED)
        logger.info("Run %s failed: no worker took it in %s s", run.pk, seconds)
        failed.append(run.pk)
    return failed


def runs_reconcile(*, worker: str = "") -> list[int]:
    """Fail the runs a dead worker left: running runs that stopped
    reporting, or (given a worker that just started) every running run of
    that worker, which cannot be running any more. Remove what they left on
    their target (containers, secret files, local and pulled images), and
    any secret folder no container of this instance has. Runs no worker
    took in time are failed too. Return the ids of the runs failed."""
    failed = runs_queued_expire()
    stale = timezone.now() - timedelta(seconds=settings.DEPLOYMENTS_RUN_STALE_SECONDS)
    candidates = Run.objects.filter(status=Run.Status.RUNNING, heartbeat__lt=stale)
    if worker:
        candidates = (
            Run.objects.filter(status=Run.Status.RUNNING, worker=worker) | candidates
        )
    # Checked again as each is taken: a run whose heartbeat moved since it
    # was listed (its worker is alive, about to switch its deployment) stays.
    dead = (
        Q(heartbeat__lt=stale) | Q(worker=worker) if worker else Q(heartbeat__lt=stale)
    )
    for run in candidates.select_related("started_by"):
        taken = Run.objects.filter(dead, pk=run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.FAILED,
            finished=timezone.now(),
            error="The worker stopped in the middle of this run; the "
            "reconciliation marked it failed and removed what it left.",
        )
        if taken != 1:
            continue
        run.steps.filter(status=Step.Status.RUNNING).update(
            status=Step.Status.FAILED, finished=timezone.now()
        )
        run.steps.filter(status=Step.Status.PENDING).update(status=Step.Status.SKIPPED)
        try:
            pipeline.orphans_remove(engine.engine_client(run.target), run=run)
        except (engine.EngineError, buildah.BuildahError) as error:
            logger.warning("Run %s: leftovers not removed: %s", run.pk, error)
        shutil.rmtree(
            settings.DEPLOYMENTS_DIR / "runs" / str(run.pk), ignore_errors=True
        )
        logger.info("Run %s failed by the reconciliation", run.pk)
        failed.append(run.pk)
    for name in pipeline.secret_folders_sweep():
        logger.info("Secret folder %s belonged to no container; removed", name)
    return failed


def deployment_logs(*, deployment_id: int, tail: int = 100) -> str:
    """The service's own last log lines, with secret values masked. Called
    on the worker: web processes never talk to the engine."""
    deployment = Deployment.objects.get(pk=deployment_id)
    if deployment.status != Deployment.Status.LIVE:
        return ""
    client = engine.engine_client(deployment.target)
    container = engine.container_find(client, deployment.container_name)
    if container is None:
        # Said, not shown as an empty log: the service is not running.
        raise engine.EngineError(
            f"{deployment.container_name} is not on {deployment.target} any more, "
            "so the service is not running; run it again, roll it back or tear "
            "it down."
        )
    values = secret_values(example=deployment.example)
    # The container holds the values it was started with, which a secret
    # set since has replaced in the database but not in the container.
    folder = settings.DEPLOYMENTS_DIR / "secrets" / deployment.container_name
    if folder.is_dir():
        for path in folder.iterdir():
            with contextlib.suppress(OSError, UnicodeDecodeError):
                values[f"{path.name} (mounted)"] = path.read_text()
    return pipeline.secrets_mask(engine.container_logs(container, tail=tail), values)
