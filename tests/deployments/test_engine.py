"""Containers as the engine starts them: a manifest's options that pass the
policy reach the container, and nothing can undo the hardening."""

import json
import subprocess

import pytest
import requests

from deployments import engine
from deployments.engine import ContainerSpec
from deployments.models import Deployment, Run
from tests.deployments.conftest import INSTANCE, example_write, free_port
from tests.deployments.runs import PLAIN_DOCKERFILE, PLAIN_MANIFEST, example_run


def inspected(name: str) -> dict:
    answer = subprocess.run(
        ["docker", "inspect", name], capture_output=True, text=True, timeout=30
    )
    return json.loads(answer.stdout)[0]


def test_run_options_that_pass_the_policy_reach_the_container(
    worker, instructor, examples
):
    extra_port = free_port()
    slug = example_write(
        examples,
        "with-options",
        PLAIN_DOCKERFILE,
        PLAIN_MANIFEST
        + "run:\n"
        + "  network_mode: bridge\n"
        + f"  ports: ['127.0.0.1:{extra_port}:8080']\n"
        + "  security_opt: [apparmor=docker-default]\n"
        + "  environment: {GREETING: hello}\n",
    )

    run = example_run(instructor, slug)

    assert run.status == Run.Status.SUCCEEDED, run.error
    deployment = Deployment.objects.get(name=slug)
    container = inspected(deployment.container_name)
    host = container["HostConfig"]
    assert host["NetworkMode"] == "bridge"
    assert {"HostIp": "127.0.0.1", "HostPort": str(extra_port)} in host["PortBindings"][
        "8080/tcp"
    ]
    assert "apparmor=docker-default" in host["SecurityOpt"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert "GREETING=hello" in container["Config"]["Env"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    answer = requests.get(f"http://127.0.0.1:{extra_port}/health", timeout=5)
    assert answer.text == "ok\n"


@pytest.mark.parametrize(
    "changes",
    [
        {"privileged": True},
        {"cap_add": ["NET_ADMIN"]},
        {"binds": ["/etc:/host-etc"]},
        {"devices": ["/dev/null:/dev/null"]},
        {"network_mode": "host"},
        {"network_mode": "none"},
        {"pid_mode": "host"},
        {"ipc_mode": "shareable"},
        {"security_opt": ["seccomp=unconfined"]},
        {"security_opt": ["no-new-privileges=false"]},
        {"port_bindings": ["0.0.0.0:9000:8080"]},
        {"port_bindings": ["9000:8080"]},
    ],
    ids=lambda changes: "-".join(f"{key}={value}" for key, value in changes.items()),
)
def test_container_start_refuses_what_would_weaken_the_container(
    deployments_home, settings, changes
):
    client = engine.engine_client("local")
    name = f"{INSTANCE}-refused"
    spec = ContainerSpec(
        image=settings.DEPLOYMENTS_BASE_IMAGE,
        name=name,
        port=8080,
        labels={"lessongraph.instance": INSTANCE},
    )
    for key, value in changes.items():
        setattr(spec, key, value)

    with pytest.raises(engine.EngineError, match="was not started"):
        engine.container_start(client, spec)

    assert engine.container_find(client, name) is None
