"""What the pipeline refuses and survives, on the real engine, registry and
buildah."""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.utils import timezone

from config.errors import ApplicationError
from deployments import engine, pipeline, registry, services
from deployments.models import Deployment, Run, Step
from deployments.pipeline import container_name, local_image_name, run_auth
from deployments.signing import provenance_sign
from deployments.tasks import runs_reconcile
from tests.deployments.conftest import INSTANCE, example_write
from tests.deployments.runs import (
    FLAGSHIP,
    PLAIN_DOCKERFILE,
    PLAIN_MANIFEST,
    example_run,
    registry_elsewhere,
    run_wait,
    site_password_in,
    steps_of,
)

BAKED = "baked-secret-value-7f3a9c"
LEAKY_DOCKERFILES = {
    "env": (
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY www /www\n"
        f"ENV API_TOKEN={BAKED}\nUSER 65534:65534\n"
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    ),
    "arg": (
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        f"ARG BUILD_TOKEN={BAKED}\nRUN echo built > /tmp/marker\nCOPY www /www\n"
        'USER 65534:65534\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    ),
    "copied-from-mount": (
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY www /www\n"
        "RUN --mount=type=secret,id=build_token cp /run/secrets/build_token /www/token\n"
        'USER 65534:65534\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    ),
    # As in a registry's auth field: base64 of "user:secret", where the value
    # starts a byte past a 3-byte boundary.
    "base64-after-a-name": (
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY www /www\n"
        "RUN --mount=type=secret,id=build_token { printf 'bot:'; "
        "cat /run/secrets/build_token; } | base64 > /www/auth\n"
        'USER 65534:65534\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    ),
    # base64 wraps its lines at 76 characters; 40 bytes in, the value's
    # form is split across two lines.
    "base64-wrapped": (
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY www /www\n"
        "RUN --mount=type=secret,id=build_token { printf '%040d' 0; "
        "cat /run/secrets/build_token; echo; } | base64 > /www/wrapped\n"
        'USER 65534:65534\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    ),
}


@pytest.mark.parametrize("how", list(LEAKY_DOCKERFILES))
def test_leak_gate_stops_an_image_that_bakes_a_secret_in(
    worker, instructor, examples, how
):
    slug = example_write(
        examples,
        f"leaky-{how}",
        LEAKY_DOCKERFILES[how],
        PLAIN_MANIFEST + "build_secrets: [build_token]\n",
    )
    services.secret_set(example=slug, name="build_token", value=BAKED)

    run = example_run(instructor, slug)

    steps = steps_of(run)
    assert run.status == Run.Status.FAILED
    assert steps["leak gate"].status == Step.Status.FAILED
    assert "found a secret value" in run.error
    assert steps["push"].status == Step.Status.SKIPPED
    assert BAKED not in run.error + "".join(step.log for step in steps.values())
    images = subprocess.run(
        ["buildah", "images", "-q", local_image_name(run)],
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert images.strip() == ""


def test_the_docker_builder_sends_no_credentials_to_a_base_image_s_other_registry(
    worker, instructor, examples, settings
):
    slug = example_write(examples, "based-elsewhere", PLAIN_DOCKERFILE, PLAIN_MANIFEST)

    with registry_elsewhere() as (address, sent):
        settings.DEPLOYMENTS_BASE_IMAGE = f"{address}/lessongraph/base:busybox"
        run = example_run(instructor, slug, builder=Run.Builder.DOCKER)

    assert run.status == Run.Status.FAILED
    assert steps_of(run)["build"].status == Step.Status.FAILED
    assert sent
    assert not site_password_in(sent)


def test_verify_finds_a_secret_value_that_docker_inspect_shows_escaped(
    worker, instructor, examples
):
    # docker inspect, read as JSON, writes the value's ü and ß as \\u escapes.
    value = "gr\u00fc\u00dfe-aus-dem-test"
    slug = example_write(
        examples,
        "inspected",
        PLAIN_DOCKERFILE,
        PLAIN_MANIFEST
        + "run_secrets: [api_key]\n"
        + f"run: {{environment: {{GREETING: '{value}'}}}}\n",
    )
    services.secret_set(example=slug, name="api_key", value=value)

    run = example_run(instructor, slug)

    assert run.status == Run.Status.FAILED
    assert steps_of(run)["verify"].status == Step.Status.FAILED
    assert "docker inspect shows the value of api_key" in run.error


@pytest.mark.parametrize(
    ("run_options", "rule"),
    [
        ("run: {privileged: true}\n", "privileged"),
        (
            "run: {volumes: ['/var/run/docker.sock:/var/run/docker.sock']}\n",
            "docker-socket",
        ),
        ("run: {cap_add: [SYS_ADMIN]}\n", "capabilities"),
        ("run: {environment: {DOCKER_HOST: 'tcp://127.0.0.1:2375'}}\n", "docker-host"),
        ("run: {ports: ['0.0.0.0:8080:8080']}\n", "ports-all-interfaces"),
    ],
)
def test_policy_refuses_a_bad_example_before_anything_is_built(
    worker, instructor, examples, run_options, rule
):
    slug = example_write(
        examples, "bad-settings", PLAIN_DOCKERFILE, PLAIN_MANIFEST + run_options
    )

    run = example_run(instructor, slug)

    steps = steps_of(run)
    assert run.status == Run.Status.FAILED
    assert steps["check"].status == Step.Status.FAILED
    assert f"{rule}:" in run.error
    assert steps["build"].status == Step.Status.SKIPPED


def test_policy_refuses_an_example_that_would_take_the_registry_s_port(
    worker, instructor, examples, settings
):
    port = settings.DEPLOYMENTS_REGISTRY.rpartition(":")[2]
    slug = example_write(
        examples,
        "registry-squatter",
        PLAIN_DOCKERFILE,
        PLAIN_MANIFEST + f"run: {{ports: ['127.0.0.1:{port}:8080']}}\n",
    )

    run = example_run(instructor, slug)

    assert run.status == Run.Status.FAILED
    assert steps_of(run)["check"].status == Step.Status.FAILED
    assert f"site-port: publishing '127.0.0.1:{port}:8080'" in run.error


def test_docker_builder_refuses_build_time_secrets_and_says_why(worker, instructor):
    run = example_run(instructor, builder=Run.Builder.DOCKER)

    assert run.status == Run.Status.FAILED
    assert steps_of(run)["build"].status == Step.Status.FAILED
    assert "cannot mount them" in run.error


def test_docker_builder_builds_pushes_and_deploys_an_example_without_build_secrets(
    worker, instructor, examples
):
    slug = example_write(examples, "plain-service", PLAIN_DOCKERFILE, PLAIN_MANIFEST)

    run = example_run(instructor, slug, builder=Run.Builder.DOCKER)

    assert run.status == Run.Status.SUCCEEDED, run.error
    deployment = Deployment.objects.get(name=slug)
    assert requests.get(deployment.url + "health", timeout=5).text == "ok\n"


def test_a_failed_health_check_keeps_the_old_container_serving(
    worker, instructor, examples, settings
):
    settings.DEPLOYMENTS_HEALTH_TIMEOUT_SECONDS = 3
    slug = example_write(examples, "sometimes-sick", PLAIN_DOCKERFILE, PLAIN_MANIFEST)
    healthy = example_run(instructor, slug)
    assert healthy.status == Run.Status.SUCCEEDED, healthy.error
    serving = Deployment.objects.get(name=slug)
    (examples / slug / "context" / "www" / "health").unlink()

    sick = example_run(instructor, slug)

    assert sick.status == Run.Status.FAILED
    assert "never became healthy" in sick.error
    assert f"{serving.container_name} keeps serving" in sick.error
    deployment = Deployment.objects.get(name=slug)
    assert deployment.container_name == serving.container_name
    assert deployment.digest == healthy.digest
    assert requests.get(serving.url + "health", timeout=5).status_code == HTTPStatus.OK
    assert (
        subprocess.run(
            ["docker", "inspect", container_name(sick)], capture_output=True
        ).returncode
        != 0
    )


def test_two_concurrent_starts_give_one_run_and_a_reason(worker, instructor):
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def start() -> None:
        barrier.wait()
        try:
            outcomes.append(
                services.run_start(
                    account=instructor,
                    kind=Run.Kind.EXAMPLE,
                    subject=FLAGSHIP,
                    example=FLAGSHIP,
                )
            )
        except ApplicationError as error:
            outcomes.append(error)
        finally:
            # Each thread has its own connection; left open, it would keep
            # the test database from being dropped at the end of the session.
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    runs = [outcome for outcome in outcomes if isinstance(outcome, Run)]
    refusals = [
        outcome for outcome in outcomes if isinstance(outcome, ApplicationError)
    ]
    assert len(runs) == 1
    assert len(refusals) == 1
    assert refusals[0].status == HTTPStatus.CONFLICT
    assert "already active" in refusals[0].message
    assert run_wait(runs[0]).status == Run.Status.SUCCEEDED


def test_a_tampered_signature_is_refused_at_deploy(worker, instructor):
    built = example_run(instructor)
    assert built.status == Run.Status.SUCCEEDED, built.error
    repository = "examples/" + FLAGSHIP
    forged = provenance_sign({"digest": built.digest, "builder": "buildah", "run": 0})
    altered = forged.replace(b'"run":0', b'"run":1').replace(b'"run": 0', b'"run": 1')
    assert altered != forged
    registry.signature_store(repository, built.digest, altered)
    deployment = Deployment.objects.get(name=FLAGSHIP)

    again = run_wait(
        services.image_deploy_start(
            account=instructor,
            image=f"{deployment.repository}@{built.digest}",
            name="tampered",
            target="local",
            port=8080,
            health_path="/health",
        )
    )

    assert again.status == Run.Status.FAILED
    assert steps_of(again)["deploy"].status == Step.Status.FAILED
    assert "does not verify" in again.error


def test_an_unsigned_image_is_refused_at_deploy(worker, instructor, settings):
    base = settings.DEPLOYMENTS_BASE_IMAGE

    run = run_wait(
        services.image_deploy_start(
            account=instructor, image=base, name="unsigned", target="local", port=8080,
            health_path="/",
        )
    )  # fmt: skip

    assert run.status == Run.Status.FAILED
    assert "unsigned" in run.error
    assert steps_of(run)["check"].status == Step.Status.SUCCEEDED


def test_a_registry_that_is_down_fails_the_step_with_a_clear_message(
    worker, instructor, settings
):
    settings.DEPLOYMENTS_REGISTRY = "127.0.0.1:9"
    settings.DEPLOYMENTS_ALLOWED_REGISTRIES = ["127.0.0.1:9"]

    run = run_wait(
        services.image_deploy_start(
            account=instructor, image="127.0.0.1:9/examples/x:latest", name="nowhere",
            target="local", port=8080, health_path="/",
        )
    )  # fmt: skip

    assert run.status == Run.Status.FAILED
    assert "does not answer" in run.error


def test_a_signature_looked_up_while_the_registry_is_down_says_what_to_do(settings):
    settings.DEPLOYMENTS_REGISTRY = "127.0.0.1:9"

    with pytest.raises(registry.RegistryError) as failure:
        registry.signature_fetch("examples/x", "sha256:" + "a" * 64)

    assert str(failure.value) == (
        "The registry at http://127.0.0.1:9 does not answer: nothing listens "
        "there. Start it (`manage.py registry start`) and run again."
    )


def test_a_push_to_a_registry_that_is_down_says_so_in_plain_words(
    deployments_home, instructor, settings
):
    run = Run.objects.create(
        kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP,
        status=Run.Status.RUNNING, started_by=instructor,
    )  # fmt: skip
    step = Step.objects.create(run=run, position=1, name="push")
    state = pipeline.Pass(run=run, secret_values={})
    state.local_image = settings.DEPLOYMENTS_BASE_IMAGE
    settings.DEPLOYMENTS_REGISTRY = "127.0.0.1:9"
    state.repository = f"127.0.0.1:9/examples/{FLAGSHIP}"

    with pytest.raises(pipeline.StepFailed) as failure:
        services._step_execute(state, step)

    assert str(failure.value).startswith("The registry at 127.0.0.1:9 does not answer")
    step.refresh_from_db()
    assert step.status == Step.Status.FAILED
    assert "connection refused" in step.log
    assert step.log.count("The registry at 127.0.0.1:9 does not answer") == 1


def test_a_push_with_wrong_credentials_fails_from_the_stream(
    deployments_home, settings
):
    client = engine.engine_client("local")
    repository = settings.DEPLOYMENTS_BASE_IMAGE.rsplit(":", 1)[0]
    digest = registry.manifest_digest("lessongraph/base", "busybox")
    engine.image_pull(client, reference=f"{repository}@{digest}", auth=run_auth())
    engine.image_tag(client, f"{repository}@{digest}", repository, "wrong-credentials")

    with pytest.raises(engine.EngineError, match=r"push to .* failed"):
        engine.image_push(
            client,
            repository=repository,
            tag="wrong-credentials",
            auth={"username": "lessongraph", "password": "wrong"},
            on_line=lambda line: None,
        )


def test_reconciliation_fails_a_run_its_worker_left_and_removes_its_container(
    worker, instructor, settings
):
    settings.DEPLOYMENTS_RUN_STALE_SECONDS = 5
    stale = timezone.now() - timezone.timedelta(seconds=60)
    run = Run.objects.create(
        kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP, started_by=instructor,
        status=Run.Status.RUNNING, started=stale, heartbeat=stale, worker="gone@host",
    )  # fmt: skip
    Step.objects.create(run=run, position=1, name="deploy", status=Step.Status.RUNNING)
    client = engine.engine_client("local")
    base = settings.DEPLOYMENTS_BASE_IMAGE
    digest = registry.manifest_digest("lessongraph/base", "busybox")
    image = f"{base.rsplit(':', 1)[0]}@{digest}"
    engine.image_pull(client, reference=image, auth=run_auth())
    client.containers.run(
        image, ["sleep", "300"], name=container_name(run), detach=True,
        labels={"lessongraph.run": str(run.pk), "lessongraph.instance": INSTANCE},
    )  # fmt: skip

    failed = runs_reconcile.delay().get(timeout=60)

    run.refresh_from_db()
    assert failed == [run.pk]
    assert run.status == Run.Status.FAILED
    assert "stopped in the middle" in run.error
    assert run.steps.get().status == Step.Status.FAILED
    assert engine.container_find(client, container_name(run)) is None


def test_a_container_of_another_site_with_the_same_name_is_left_alone(
    worker, instructor
):
    built = example_run(instructor)
    assert built.status == Run.Status.SUCCEEDED, built.error
    image = f"{Deployment.objects.get(name=FLAGSHIP).repository}@{built.digest}"
    # Another site, instance "<ours>-x", deploying "web" in its run N names
    # its container as this site deploying "x-web" in run N does.
    probe = Run.objects.create(kind=Run.Kind.IMAGE, subject="x", started_by=instructor)
    next_pk = probe.pk + 1
    probe.delete()
    theirs = f"{INSTANCE}-x-web-r{next_pk}"
    subprocess.run(
        ["docker", "run", "-d", "--name", theirs,
         "--label", f"lessongraph.instance={INSTANCE}-x", "--user", "65534:65534",
         image, "httpd", "-f", "-p", "8080", "-h", "/www"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        run = run_wait(
            services.image_deploy_start(
                account=instructor,
                image=image,
                name="x-web",
                target="local",
                port=8080,
                health_path="/health",
            )
        )
        labels = subprocess.run(
            ["docker", "inspect", "-f", "{{json .Config.Labels}}", theirs],
            capture_output=True, text=True,
        ).stdout  # fmt: skip
    finally:
        subprocess.run(["docker", "rm", "-f", theirs], capture_output=True)

    assert run.pk == next_pk
    assert run.status == Run.Status.FAILED
    assert "that this site did not start" in run.error
    assert f'"lessongraph.instance":"{INSTANCE}-x"' in labels


def test_a_run_no_worker_took_is_failed_so_a_new_start_can_go(
    deployments_home, instructor, settings
):
    settings.DEPLOYMENTS_RUN_QUEUED_SECONDS = 5
    waiting = services.run_start(
        account=instructor, kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP
    )
    Run.objects.filter(pk=waiting.pk).update(
        created=timezone.now() - timezone.timedelta(seconds=60)
    )

    again = services.run_start(
        account=instructor, kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP
    )

    waiting.refresh_from_db()
    assert again.status == Run.Status.QUEUED
    assert waiting.status == Run.Status.FAILED
    assert "No worker took this run within 5 s" in waiting.error
    assert set(waiting.steps.values_list("status", flat=True)) == {Step.Status.SKIPPED}


def test_reconciliation_fails_runs_queued_too_long_and_only_those(
    deployments_home, instructor, settings
):
    settings.DEPLOYMENTS_RUN_QUEUED_SECONDS = 5
    old = timezone.now() - timezone.timedelta(seconds=60)
    forgotten = Run.objects.create(
        kind=Run.Kind.IMAGE, subject="forgotten", started_by=instructor, created=old
    )
    fresh = Run.objects.create(
        kind=Run.Kind.IMAGE, subject="fresh", started_by=instructor
    )

    failed = services.runs_reconcile()

    forgotten.refresh_from_db()
    fresh.refresh_from_db()
    assert failed == [forgotten.pk]
    assert forgotten.status == Run.Status.FAILED
    assert "is a Celery worker running?" in forgotten.error
    assert fresh.status == Run.Status.QUEUED


SLOW_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY www /www
USER 65534:65534
CMD ["sh", "-c", "sleep 4; exec httpd -f -p 8080 -h /www"]
"""


def reconciled_while_active(run: Run) -> list[int]:
    """Reconcile every 0.2 s, far more often than the periodic task does,
    until ``run`` ends; return the runs that failed meanwhile."""
    reconciled: list[int] = []
    while Run.objects.get(pk=run.pk).active:
        reconciled += services.runs_reconcile()
        time.sleep(0.2)
    return reconciled


def test_a_run_waiting_on_a_slow_health_check_is_not_taken_for_dead(
    worker, instructor, examples, settings
):
    settings.DEPLOYMENTS_RUN_STALE_SECONDS = 2
    slug = example_write(examples, "slow-start", SLOW_DOCKERFILE, PLAIN_MANIFEST)
    run = services.run_start(
        account=instructor, kind=Run.Kind.EXAMPLE, subject=slug, example=slug
    )

    assert reconciled_while_active(run) == []
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error


def test_a_silent_step_of_the_docker_builder_is_not_taken_for_dead(
    worker, instructor, examples, settings
):
    # The engine's builder writes nothing while a RUN step works.
    settings.DEPLOYMENTS_RUN_STALE_SECONDS = 2
    slug = example_write(
        examples,
        "silent-build",
        PLAIN_DOCKERFILE.replace("COPY www /www", "COPY www /www\nRUN sleep 5"),
        PLAIN_MANIFEST,
    )
    run = services.run_start(
        account=instructor,
        kind=Run.Kind.EXAMPLE,
        subject=slug,
        example=slug,
        builder=Run.Builder.DOCKER,
    )

    assert reconciled_while_active(run) == []
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error


def test_a_service_slower_to_start_than_the_engine_s_checks_has_until_the_timeout(
    worker, instructor, examples, settings
):
    # Past the health check's start period of 5 s and its retries, the
    # engine calls this service unhealthy before it first answers.
    settings.DEPLOYMENTS_HEALTH_TIMEOUT_SECONDS = 20
    slug = example_write(
        examples,
        "slower-start",
        SLOW_DOCKERFILE.replace("sleep 4", "sleep 8"),
        PLAIN_MANIFEST,
    )

    run = example_run(instructor, slug)

    assert run.status == Run.Status.SUCCEEDED, run.error
    healthy_after = re.search(
        r"Healthy after ([0-9.]+) s", steps_of(run)["deploy"].proof
    )
    assert healthy_after is not None
    assert float(healthy_after[1]) > 7


def test_a_run_the_reconciliation_failed_does_not_switch_the_deployment(
    worker, instructor, examples, monkeypatch
):
    """The reconciliation takes the run for dead while its deploy step
    pulls (the worker is alive, only slow): nothing of the run is on the
    engine yet, so only the run's status can stop the switch."""
    slug = example_write(examples, "reconciled", PLAIN_DOCKERFILE, PLAIN_MANIFEST)
    pull = engine.image_pull
    reconciled: list[int] = []

    def pull_while_reconciled(client, **arguments):
        running = Run.objects.get(status=Run.Status.RUNNING)
        reconciled.extend(services.runs_reconcile(worker=running.worker))
        return pull(client, **arguments)

    monkeypatch.setattr(engine, "image_pull", pull_while_reconciled)

    run = example_run(instructor, slug)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        "\n" in Run.objects.get(pk=run.pk).error
        or Deployment.objects.filter(name=slug).exists()
    ):
        time.sleep(0.1)

    run.refresh_from_db()
    assert reconciled == [run.pk]
    assert run.status == Run.Status.FAILED
    assert run.error.startswith("The worker stopped in the middle of this run")
    assert "left as it was" in run.error
    assert not Deployment.objects.filter(name=slug).exists()
    assert (
        engine.container_find(engine.engine_client("local"), container_name(run))
        is None
    )


def secret_folder(settings, name: str) -> Path:
    folder = settings.DEPLOYMENTS_DIR / "secrets" / name
    folder.mkdir(parents=True)
    (folder / "api_key").write_text("a-run-time-secret-value")
    return folder


def test_reconciliation_removes_secret_folders_no_container_of_this_instance_has(
    deployments_home, instructor, settings
):
    client = engine.engine_client("local")
    active = Run.objects.create(
        kind=Run.Kind.IMAGE, subject="starting", started_by=instructor,
        status=Run.Status.RUNNING, heartbeat=timezone.now(),
    )  # fmt: skip
    serving = f"{INSTANCE}-serving-r900"
    base = settings.DEPLOYMENTS_BASE_IMAGE
    digest = registry.manifest_digest("lessongraph/base", "busybox")
    image = f"{base.rsplit(':', 1)[0]}@{digest}"
    engine.image_pull(client, reference=image, auth=run_auth())
    client.containers.run(
        image, ["sleep", "300"], name=serving, detach=True,
        labels={"lessongraph.instance": INSTANCE},
    )  # fmt: skip
    left = secret_folder(settings, f"{INSTANCE}-killed-r901")
    kept = [
        secret_folder(settings, serving),
        secret_folder(settings, container_name(active)),
        secret_folder(settings, "another-site-web-r1"),
    ]

    try:
        services.runs_reconcile()
    finally:
        engine.container_remove(client, serving)

    assert not left.exists()
    assert all(folder.exists() for folder in kept)


def test_reconciliation_removes_the_images_a_failed_run_pulled(
    deployments_home, instructor, settings
):
    settings.DEPLOYMENTS_RUN_STALE_SECONDS = 5
    client = engine.engine_client("local")
    stale = timezone.now() - timezone.timedelta(seconds=60)
    run = Run.objects.create(
        kind=Run.Kind.IMAGE, subject="left-behind", started_by=instructor,
        status=Run.Status.RUNNING, started=stale, heartbeat=stale,
        worker="gone@host",
    )  # fmt: skip
    base = settings.DEPLOYMENTS_BASE_IMAGE
    base_digest = registry.manifest_digest("lessongraph/base", "busybox")
    base_image = f"{base.rsplit(':', 1)[0]}@{base_digest}"
    engine.image_pull(client, reference=base_image, auth=run_auth())
    repository = f"{settings.DEPLOYMENTS_REGISTRY}/examples/left-behind"
    engine.image_tag(client, base_image, repository, f"run-{run.pk}")
    digest = engine.image_push(
        client, repository=repository, tag=f"run-{run.pk}", auth=run_auth(),
        on_line=lambda line: None,
    )  # fmt: skip
    pulled = f"{repository}@{digest}"
    engine.image_pull(client, reference=pulled, auth=run_auth())
    Run.objects.filter(pk=run.pk).update(image=pulled, digest=digest)

    failed = services.runs_reconcile()

    assert failed == [run.pk]
    for reference in (pulled, f"{repository}:run-{run.pk}"):
        with pytest.raises(engine.EngineError, match="No such image"):
            engine.image_inspect(client, reference)


def _working_containers(prefix: str) -> list[str]:
    """buildah's working containers whose names start so (bud names them
    after the image they start from)."""
    listed = subprocess.run(
        ["buildah", "containers", "--json"], capture_output=True, text=True, check=True
    ).stdout
    return [
        entry["containername"]
        for entry in json.loads(listed) or []
        if entry["containername"].startswith(prefix)
    ]


def test_a_build_whose_worker_is_killed_leaves_no_working_container(
    deployments_home, tmp_path, settings
):
    token = secrets.token_hex(4)
    base = f"localhost/{INSTANCE}/killed-base-{token}:1"
    named = f"killed-base-{token}"
    subprocess.run(
        ["buildah", "tag", settings.DEPLOYMENTS_BASE_IMAGE, base],
        check=True, capture_output=True,
    )  # fmt: skip
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nRUN sleep 60\n")
    tag = f"localhost/{INSTANCE}/killed-build-{token}:1"
    worker_stand_in = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from deployments.buildah import buildah_run; "
         "buildah_run(sys.argv[1:], timeout=120)",
         "bud", "--format", "docker", "--pull-never", "-t", tag, str(tmp_path)],
        cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _working_containers(named) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _working_containers(named), "the build never started"
        # Into the RUN step, where a build spends its time.
        time.sleep(2)

        worker_stand_in.kill()
        worker_stand_in.wait()
        deadline = time.monotonic() + 20
        while _working_containers(named) and time.monotonic() < deadline:
            time.sleep(0.2)

        assert _working_containers(named) == []
    finally:
        worker_stand_in.kill()
        # Without the death signal, buildah builds on; its tag names it.
        left = subprocess.run(["pgrep", "-f", tag], capture_output=True, text=True)
        for pid in left.stdout.split():
            os.kill(int(pid), signal.SIGTERM)
        for name in _working_containers(named):
            subprocess.run(["buildah", "rm", name], capture_output=True)
        subprocess.run(["buildah", "rmi", "-f", base, tag], capture_output=True)
