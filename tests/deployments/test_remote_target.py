"""A target reached through ``DOCKER_HOST=tcp://...`` with TLS: the run
deploys there, and an engine address without verified TLS is refused."""

import json
import os
import subprocess

import pytest

from deployments import engine
from deployments.models import Deployment, Run
from tests.deployments.conftest import INSTANCE
from tests.deployments.runs import FLAGSHIP, example_run
from tests.deployments.tls_engine import TlsEngine, certificates_write


@pytest.fixture
def tls_engine(tmp_path, settings, monkeypatch):
    certificates_write(tmp_path / "certs")
    relay = TlsEngine(tmp_path / "certs")
    settings.DEPLOYMENTS_TARGETS = {"local": "", "remote": relay.host}
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path / "certs"))
    yield relay
    relay.close()


def test_the_flagship_example_deploys_on_a_tls_target(worker, instructor, tls_engine):
    run = example_run(instructor, target="remote")

    assert run.status == Run.Status.SUCCEEDED, run.error
    assert tls_engine.connections > 0
    deployment = Deployment.objects.get(name=FLAGSHIP, target="remote")
    # The local engine's own command line, without the TLS settings.
    local = {name: value for name, value in os.environ.items() if "DOCKER" not in name}
    labels = json.loads(
        subprocess.run(
            ["docker", "inspect", "--format", "{{json .Config.Labels}}",
             deployment.container_name],
            capture_output=True, text=True, timeout=30, env=local, check=True,
        ).stdout
    )  # fmt: skip
    assert labels["lessongraph.target"] == "remote"
    assert labels["lessongraph.instance"] == INSTANCE


def test_a_client_certificate_from_another_authority_is_refused(
    tls_engine, tmp_path, monkeypatch
):
    certificates_write(tmp_path / "stranger", name="stranger")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path / "stranger"))

    with pytest.raises(engine.EngineError, match="'remote' does not answer"):
        engine.engine_client("remote")

    assert tls_engine.connections == 0


@pytest.mark.parametrize(
    "environment",
    [{}, {"DOCKER_CERT_PATH": "/nowhere"}, {"DOCKER_TLS_VERIFY": "1"}],
    ids=["no TLS", "TLS without verification", "verification without certificates"],
)
def test_a_tcp_engine_without_verified_tls_is_refused(
    tls_engine, monkeypatch, environment
):
    monkeypatch.delenv("DOCKER_TLS_VERIFY")
    monkeypatch.delenv("DOCKER_CERT_PATH")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(engine.EngineError, match="needs verified TLS"):
        engine.engine_client("remote")

    assert tls_engine.connections == 0
