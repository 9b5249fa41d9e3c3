"""Deployments are tested against the real engine, registry and buildah.

One registry for the session, on its own port and folder, with the base
image pushed to it; each test runs its pipeline on a real Celery worker.
"""

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings

from accounts.models import User
from config.celery import app
from deployments import buildah, engine, registry

INSTANCE = f"lgtest{os.getpid()}"
EXAMPLES = Path(django_settings.BASE_DIR) / "deployments" / "examples"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def deployments_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's registry and base image, on settings of its own: a
    free port and an instance name, so that sessions sharing the engine
    never touch each other's containers."""
    missing = engine.engine_missing()
    if missing:
        pytest.fail("Deployments need: " + "; ".join(missing) + " (make provision)")
    home = tmp_path_factory.mktemp("deployments")
    saved = {
        name: getattr(django_settings, name)
        for name in (
            "DEPLOYMENTS_DIR",
            "DEPLOYMENTS_REGISTRY",
            "DEPLOYMENTS_ALLOWED_REGISTRIES",
            "DEPLOYMENTS_BASE_IMAGE",
            "DEPLOYMENTS_EXAMPLES_DIR",
            "DEPLOYMENTS_INSTANCE",
        )
    }
    registry_address = f"127.0.0.1:{free_port()}"
    django_settings.DEPLOYMENTS_DIR = home
    django_settings.DEPLOYMENTS_INSTANCE = INSTANCE
    django_settings.DEPLOYMENTS_REGISTRY = registry_address
    django_settings.DEPLOYMENTS_ALLOWED_REGISTRIES = [registry_address]
    django_settings.DEPLOYMENTS_BASE_IMAGE = (
        f"{registry_address}/lessongraph/base:busybox"
    )
    examples = home / "examples"
    shutil.copytree(EXAMPLES, examples)
    django_settings.DEPLOYMENTS_EXAMPLES_DIR = examples
    registry.registry_start()
    buildah.base_image_build(
        busybox=Path("/bin/busybox"),
        destination=django_settings.DEPLOYMENTS_BASE_IMAGE,
        on_line=lambda line: None,
    )
    try:
        yield home
    finally:
        registry.registry_stop()
        for name, value in saved.items():
            setattr(django_settings, name, value)
        # Containers a failed test may have left.
        names = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=lessongraph.instance={INSTANCE}"],
            capture_output=True, text=True, timeout=30,
        ).stdout.split()  # fmt: skip
        if names:
            subprocess.run(
                ["docker", "rm", "-f", *names], capture_output=True, timeout=60
            )
        images_remove(registry_address)


def images_remove(registry_address: str) -> None:
    """The images the session pulled, built or tagged from its own registry,
    from the engine and from buildah's store: nothing else names them."""
    listed = subprocess.run(
        ["docker", "images", "--digests", "--format",
         "{{.Repository}} {{.Tag}} {{.Digest}}"],
        capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    references = []
    for line in listed.splitlines():
        repository, tag, digest = line.split()
        if repository.startswith(f"{registry_address}/"):
            references.append(
                f"{repository}:{tag}" if tag != "<none>" else f"{repository}@{digest}"
            )
    if references:
        subprocess.run(
            ["docker", "rmi", "-f", *references], capture_output=True, timeout=120
        )
    stored = subprocess.run(
        ["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"],
        capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    names = [
        name
        for name in stored.split()
        if name.startswith((f"{registry_address}/", f"localhost/{INSTANCE}/"))
    ]
    if names:
        subprocess.run(
            ["buildah", "rmi", "-f", *names], capture_output=True, timeout=120
        )


def containers_remove() -> None:
    names = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=lessongraph.instance={INSTANCE}"],
        capture_output=True, text=True, timeout=30,
    ).stdout.split()  # fmt: skip
    if names:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, timeout=60)


@pytest.fixture
def worker(deployments_home: Path, transactional_db: None) -> Iterator[None]:
    """A real Celery worker; the containers a test deployed go after it.
    Runs queued by earlier tests without a worker are dropped first: their
    rows are gone, and ids start again after each test."""
    app.control.purge()
    try:
        with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
            yield
    finally:
        containers_remove()


@pytest.fixture
def instructor(transactional_db: None) -> User:
    return User.objects.create(username="Grace", role=User.Role.INSTRUCTOR)


@pytest.fixture
def examples(deployments_home: Path) -> Path:
    return Path(django_settings.DEPLOYMENTS_EXAMPLES_DIR)


def example_write(examples: Path, slug: str, dockerfile: str, manifest: str) -> str:
    """A worked example of the test's own, beside the shipped ones."""
    folder = examples / slug
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "context" / "www").mkdir(parents=True)
    (folder / "context" / "Dockerfile").write_text(dockerfile)
    (folder / "context" / "www" / "health").write_text("ok\n")
    (folder / "manifest.yaml").write_text(manifest)
    return slug
