"""Servers the tests start as processes of their own, as an operator
would: a free port, the embedded configuration's environment, and starting
and stopping a server."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT

START_SECONDS = 60
STOP_SECONDS = 15


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def embedded_environment(data_dir: Path) -> dict[str, str]:
    """The embedded defaults (SQLite and files under ``data_dir``): no
    database or broker server named."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}
    }
    environment["DATA_DIR"] = str(data_dir)
    return environment


def server_start(
    command: list[str], *, environment: dict[str, str], ready_url: str, log: Path
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session of its own and wait until
    ``ready_url`` answers 2xx; fail the test with its output otherwise."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=log.open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if requests.get(ready_url, timeout=5).ok:
                return process
        except (requests.ConnectionError, requests.Timeout):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server_stop(process)
            pytest.fail(f"{' '.join(command)} did not start:\n{log.read_text()}")
        time.sleep(0.2)


def server_stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to the server's whole session, then kill what is left."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
