"""Starting runs and waiting for them, and deployments as a run leaves
them, for the deployments tests."""

import time

from deployments import services
from deployments.models import Deployment, Run, Step

FLAGSHIP = "shipping-containers-without-dind"
RUN_SECONDS = 120

PLAIN_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY www /www
USER 65534:65534
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
PLAIN_MANIFEST = """\
port: 8080
health_path: /health
"""


def run_wait(run: Run) -> Run:
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.active:
            return run
        time.sleep(0.1)
    raise AssertionError(f"Run {run.pk} did not end in {RUN_SECONDS} s")


def example_run(account, slug: str = FLAGSHIP, **options) -> Run:
    run = services.run_start(
        account=account, kind=Run.Kind.EXAMPLE, subject=slug, example=slug, **options
    )
    return run_wait(run)


def action_run(account, deployment: Deployment, kind: Run.Kind) -> Run:
    """Roll ``deployment`` back or tear it down, and wait for the run."""
    return run_wait(
        services.deployment_action_start(
            account=account, deployment=deployment, kind=kind
        )
    )


def flagship_recorded(owner) -> Deployment:
    """The flagship example's deployment as a finished run records it; no
    container stands behind it."""
    return Deployment.objects.create(
        name=FLAGSHIP,
        example=FLAGSHIP,
        repository=f"127.0.0.1:5055/examples/{FLAGSHIP}",
        digest="sha256:" + "b" * 64,
        container_name=f"{FLAGSHIP}-r1",
        owner=owner,
    )


def steps_of(run: Run) -> dict[str, Step]:
    return {step.name: step for step in run.steps.all()}
