"""Benchmark running the flagship worked example through the app against
the same steps as plain buildah, docker and curl commands.

1. Drop and recreate the bench database named by DATABASE_URL, migrate it
   and make an instructor. Start a registry of its own on a free port of
   127.0.0.1, make the base image and start a real Celery worker in this
   process (broker: CELERY_BROKER_URL, Redis database 12 by default).
2. Each round, in a shuffled order: the app (a run of the flagship example:
   check, build, leak gate, push, sign, deploy, verify) and the plain
   commands (buildah bud with the secret mount, buildah push to an archive
   and grep it for the secrets, buildah push to the registry, docker pull
   by digest, docker run hardened with the secret file, wait for healthy,
   curl the health and proof pages, docker inspect | grep).
3. Print the medians and their ratio, and how long after the service first
   answered the app reported it healthy.

Run it with ``make bench-deployments``. It measures and does not fail when
a target is missed; it exits non-zero only when the setup fails.
"""

# ruff: noqa: E402

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lessongraph_bench_dep"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["DEBUG"] = "false"

import django

from bench.server import SetupFailed, database_reset, free_port

django.setup()

import logging
import random
import secrets
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

import requests
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from accounts.models import User
from config.celery import app
from deployments import buildah, engine, registry, services
from deployments.examples import example_load
from deployments.models import Deployment, Run, Step

FLAGSHIP = "shipping-containers-without-dind"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
TARGET_RATIO = 1.3
TARGET_HEALTHY_SECONDS = 1.0
INSTANCE = "lgbench"


def main() -> int:
    logging.getLogger().setLevel(logging.WARNING)
    try:
        instructor, home = setup()
    except SetupFailed as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    app_times: list[float] = []
    plain_times: list[float] = []
    healthy_gaps: list[float] = []
    try:
        with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
            app_run(instructor)  # warm-up: the base image and layer caches
            plain_run(home, 0)
            for number in range(1, ROUNDS + 1):
                order = [("app", None), ("plain", None)]
                random.shuffle(order)
                for kind, _ in order:
                    if kind == "app":
                        seconds, gap = app_run(instructor)
                        app_times.append(seconds)
                        healthy_gaps.append(gap)
                    else:
                        plain_times.append(plain_run(home, number))
                print(
                    f"round {number}: app {app_times[-1]:.2f} s, "
                    f"plain {plain_times[-1]:.2f} s",
                    flush=True,
                )
    finally:
        cleanup()
    report(app_times, plain_times, healthy_gaps)
    return 0


def setup() -> tuple[User, Path]:
    database_reset(os.environ["DATABASE_URL"])
    call_command("migrate", verbosity=0)
    home = Path(tempfile.mkdtemp(prefix="lessongraph-bench-deployments-"))
    address = f"127.0.0.1:{free_port()}"
    settings.DEPLOYMENTS_DIR = home
    settings.DEPLOYMENTS_INSTANCE = INSTANCE
    settings.DEPLOYMENTS_REGISTRY = address
    settings.DEPLOYMENTS_ALLOWED_REGISTRIES = [address]
    settings.DEPLOYMENTS_BASE_IMAGE = f"{address}/lessongraph/base:busybox"
    missing = engine.engine_missing()
    if missing:
        raise SetupFailed("missing: " + "; ".join(missing))
    try:
        registry.registry_start()
        buildah.base_image_build(
            busybox=Path("/bin/busybox"),
            destination=settings.DEPLOYMENTS_BASE_IMAGE,
            on_line=lambda line: None,
        )
    except (registry.RegistryError, buildah.BuildahError) as error:
        raise SetupFailed(str(error)) from None
    app.control.purge()
    instructor = User.objects.create(username="bench", role=User.Role.INSTRUCTOR)
    services.example_secrets_ensure(example=FLAGSHIP)
    return instructor, home


def app_run(instructor: User) -> tuple[float, float]:
    """One run through the app; its seconds, and how long after the
    service first answered the run reported it healthy."""
    started = time.monotonic()
    run = services.run_start(
        account=instructor, kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP
    )
    first_answer: list[float] = []
    watcher = threading.Thread(target=first_answer_watch, args=(run.pk, first_answer))
    watcher.start()
    while True:
        run.refresh_from_db()
        if not run.active:
            break
        time.sleep(0.02)
    seconds = time.monotonic() - started
    watcher.join(timeout=30)
    if run.status != Run.Status.SUCCEEDED:
        raise SystemExit(f"run {run.pk} failed: {run.error}")
    deploy = run.steps.get(name="deploy")
    assert deploy.finished is not None
    gap = (
        deploy.finished.timestamp() - first_answer[0] if first_answer else float("nan")
    )
    return seconds, gap


def first_answer_watch(run_id: int, found: list[float]) -> None:
    """Once the run's deploy step has begun, find its new container and ask
    its health page until it first answers.

    Listing containers every 10 ms loads the engine; begun earlier, that
    load would slow the run's build, which the plain commands never share."""
    client = engine.engine_client("local")
    deadline = time.monotonic() + 60
    deploy = Step.objects.filter(run_id=run_id, name="deploy", started__isnull=False)
    try:
        while time.monotonic() < deadline and not deploy.exists():
            time.sleep(0.02)
    finally:
        connection.close()
    port = 0
    while time.monotonic() < deadline and not port:
        for container in client.containers.list(
            filters={"label": [f"lessongraph.run={run_id}"]}
        ):
            bindings = container.attrs["NetworkSettings"]["Ports"].get("8080/tcp")
            if bindings:
                port = int(bindings[0]["HostPort"])
        time.sleep(0.01)
    while time.monotonic() < deadline and port:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                found.append(time.time())
                return
        except requests.RequestException:
            pass
        time.sleep(0.01)


def sh(command: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    ).stdout


def plain_run(home: Path, number: int) -> float:
    """The same flow as plain commands, each as a person would type it."""
    example = example_load(FLAGSHIP)
    values = services.secret_values(example=FLAGSHIP)
    work = home / f"plain-{number}"
    shutil.copytree(example.context, work / "context")
    (work / "build_token").write_text(values["build_token"])
    (work / "api_key").write_text(values["api_key"])
    os.chown(work / "api_key", 65534, 65534)
    (work / "secrets.txt").write_text("\n".join(values.values()) + "\n")
    auth = buildah.auth_file()
    registry_address = settings.DEPLOYMENTS_REGISTRY
    username, password = registry.registry_auth()
    image = f"{registry_address}/plain/{FLAGSHIP}"
    name = f"{INSTANCE}-plain-{number}"
    nonce = secrets.token_hex(16)
    environment = {**os.environ, "REGISTRY_PASSWORD": password}
    started = time.monotonic()
    sh(
        f"""
        buildah bud --format docker --authfile {auth} --tls-verify=false \\
          --secret id=build_token,src={work}/build_token \\
          --build-arg BASE_IMAGE={settings.DEPLOYMENTS_BASE_IMAGE} \\
          -t localhost/plain:{number} {work}/context >/dev/null
        buildah push --quiet localhost/plain:{number} docker-archive:{work}/image.tar
        ! grep -a -q -F -f {work}/secrets.txt {work}/image.tar
        buildah push --quiet --authfile {auth} --tls-verify=false \\
          --digestfile {work}/digest localhost/plain:{number} docker://{image}:{number}
        digest=$(cat {work}/digest)
        echo "$REGISTRY_PASSWORD" | docker login -u {username} --password-stdin \\
          {registry_address} >/dev/null 2>&1
        docker pull -q "{image}@$digest" >/dev/null
        docker rm -f {INSTANCE}-plain-{number - 1} >/dev/null 2>&1 || true
        docker run -d --name {name} --label lessongraph.instance={INSTANCE} \\
          --read-only --cap-drop ALL --security-opt no-new-privileges:true \\
          --user 65534:65534 --tmpfs /tmp:rw,noexec,nosuid,size=16m \\
          --memory 32m --cpus 0.25 --pids-limit 32 -p 127.0.0.1::8080 \\
          --mount type=bind,src={work}/api_key,dst=/run/secrets/api_key,readonly \\
          --health-cmd 'wget -q -O /dev/null http://127.0.0.1:8080/health' \\
          --health-interval 250ms --health-start-period 5s --health-retries 3 \\
          "{image}@$digest" >/dev/null
        until [ "$(docker inspect -f '{{{{.State.Health.Status}}}}' {name})" = healthy ]; do
          sleep 0.05
        done
        port=$(docker port {name} 8080/tcp | head -n 1 | cut -d: -f2)
        curl -fsS "http://127.0.0.1:$port/health" >/dev/null
        curl -fsS "http://127.0.0.1:$port/cgi-bin/proof?nonce={nonce}" >/dev/null
        ! docker inspect {name} | grep -q -F -f {work}/secrets.txt
        """,
        env=environment,
    )
    seconds = time.monotonic() - started
    sh(f"buildah rmi -f localhost/plain:{number} >/dev/null 2>&1 || true")
    return seconds


def cleanup() -> None:
    """Remove the containers, the engine's images of the bench registry and
    the base image: the registry's port, and so their names, are new each
    time, so nothing left would ever be used again."""
    names = sh(f"docker ps -aq --filter label=lessongraph.instance={INSTANCE}").split()
    if names:
        sh("docker rm -f " + " ".join(names) + " >/dev/null")
    prefix = settings.DEPLOYMENTS_REGISTRY + "/"
    images = {
        image_id
        for repository, image_id in (
            line.split()
            for line in sh(
                "docker images --format '{{.Repository}} {{.ID}}'"
            ).splitlines()
        )
        if repository.startswith(prefix)
    }
    if images:
        sh("docker rmi -f " + " ".join(sorted(images)) + " >/dev/null")
    sh(f"buildah rmi -f {settings.DEPLOYMENTS_BASE_IMAGE} >/dev/null 2>&1 || true")
    Deployment.objects.all().delete()
    registry.registry_stop()
    shutil.rmtree(settings.DEPLOYMENTS_DIR, ignore_errors=True)


def report(app_times: list[float], plain_times: list[float], gaps: list[float]) -> None:
    app_median = statistics.median(app_times)
    plain_median = statistics.median(plain_times)
    ratio = app_median / plain_median
    gap = statistics.median(gaps)
    print()
    print(f"{'':28}{'median':>10}{'min':>10}{'max':>10}")
    for label, times in (("app (run of the example)", app_times),
                         ("plain commands", plain_times)):  # fmt: skip
        print(
            f"{label:28}{statistics.median(times):>9.2f}s{min(times):>9.2f}s{max(times):>9.2f}s"
        )
    print()
    verdict = "met" if ratio <= TARGET_RATIO else "missed"
    print(f"app / plain: {ratio:.2f}x (target <= {TARGET_RATIO}x: {verdict})")
    verdict = "met" if gap <= TARGET_HEALTHY_SECONDS else "missed"
    print(
        f"reported healthy {gap:.2f} s after the service first answered "
        f"(median; target <= {TARGET_HEALTHY_SECONDS} s: {verdict})"
    )


if __name__ == "__main__":
    sys.exit(main())
