"""The flagship example end to end on the real engine, registry and
buildah: build, leak gate, push, sign, deploy, verify, roll back, tear
down."""

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import requests
from django.conf import settings

from deployments import services
from deployments.models import Deployment, Run, Step
from deployments.pipeline import container_name, local_image_name
from tests.deployments.conftest import INSTANCE
from tests.deployments.runs import FLAGSHIP, action_run, example_run, steps_of


def test_flagship_example_builds_deploys_rolls_back_and_tears_down(worker, instructor):
    first = example_run(instructor)
    assert first.status == Run.Status.SUCCEEDED, first.error
    steps = steps_of(first)
    assert list(steps) == [
        "check",
        "build",
        "leak gate",
        "push",
        "sign",
        "deploy",
        "verify",
    ]
    assert all(step.status == Step.Status.SUCCEEDED for step in steps.values())
    assert all(step.duration_ms is not None for step in steps.values())
    assert "without showing either" in steps["verify"].proof
    assert "digest, the fingerprint of build_token)" in steps["sign"].proof
    # The local build went beside the deploy step, before the run ended.
    assert not buildah_image_present(local_image_name(first))
    deployment = Deployment.objects.get(name=FLAGSHIP)
    assert requests.get(deployment.url + "health", timeout=5).text == "ok\n"
    secret_values = services.secret_values(example=FLAGSHIP)
    inspected = subprocess.run(
        ["docker", "inspect", deployment.container_name], capture_output=True, text=True
    ).stdout
    history = subprocess.run(
        ["docker", "history", "--no-trunc", f"{deployment.repository}@{first.digest}"],
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    for value in secret_values.values():
        assert value not in inspected
        assert value not in history
        assert value not in "".join(step.log + step.proof for step in steps.values())
    host_config = json.loads(inspected)[0]["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert host_config["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"

    # A second build of a changed source gives a new digest to roll back from.
    services.secret_set(
        example=FLAGSHIP, name="api_key", value="another-run-secret-value"
    )
    second = example_run(instructor)
    assert second.status == Run.Status.SUCCEEDED, second.error
    deployment.refresh_from_db()
    assert deployment.previous_digest == first.digest
    assert requests.get(deployment.url + "health", timeout=5).status_code == 200
    assert (
        subprocess.run(
            ["docker", "inspect", container_name(first)], capture_output=True
        ).returncode
        != 0
    )
    # The retired container's image went with it; a rollback pulls it again.
    assert not image_present(deployment.repository, first.digest)

    rollback = action_run(instructor, deployment, Run.Kind.ROLLBACK)
    assert rollback.status == Run.Status.SUCCEEDED, rollback.error
    deployment.refresh_from_db()
    assert deployment.digest == first.digest
    assert image_present(deployment.repository, first.digest)
    assert not image_present(deployment.repository, second.digest)

    teardown = action_run(instructor, deployment, Run.Kind.TEARDOWN)
    assert teardown.status == Run.Status.SUCCEEDED, teardown.error
    deployment.refresh_from_db()
    assert deployment.status == Deployment.Status.TORN_DOWN
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=lessongraph.deployment={FLAGSHIP}",
         "--filter", f"label=lessongraph.instance={INSTANCE}"],
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert left == ""
    assert not image_present(deployment.repository, first.digest)


def buildah_image_present(name: str) -> bool:
    listed = subprocess.run(
        ["buildah", "images", "-q", name], capture_output=True, text=True
    )
    return listed.returncode == 0 and bool(listed.stdout.strip())


def image_present(repository: str, digest: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", f"{repository}@{digest}"],
            capture_output=True,
        ).returncode
        == 0
    )


def test_a_rollback_holds_after_the_build_secret_changed(worker, instructor):
    first = example_run(instructor)
    assert first.status == Run.Status.SUCCEEDED, first.error
    services.secret_set(
        example=FLAGSHIP, name="build_token", value="a-build-token-chosen-later"
    )
    second = example_run(instructor)
    assert second.status == Run.Status.SUCCEEDED, second.error
    deployment = Deployment.objects.get(name=FLAGSHIP)

    rollback = action_run(instructor, deployment, Run.Kind.ROLLBACK)

    assert rollback.status == Run.Status.SUCCEEDED, rollback.error
    deployment.refresh_from_db()
    assert deployment.digest == first.digest
    assert "as it was when the image was built" in steps_of(rollback)["verify"].proof


def test_a_run_time_secret_file_is_out_of_reach_of_the_host_s_other_users(
    worker, instructor
):
    if os.geteuid() != 0:
        pytest.skip("the worker writes secret files for the container's user as root")

    run = example_run(instructor)

    assert run.status == Run.Status.SUCCEEDED, run.error
    folder = Path(settings.DEPLOYMENTS_DIR) / "secrets" / container_name(run)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    # nobody on the host is the container's user, yet cannot read it.
    read = subprocess.run(
        ["cat", str(folder / "api_key")], user=65534, capture_output=True
    )
    assert read.returncode != 0
    assert b"Permission denied" in read.stderr
