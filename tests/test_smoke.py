"""Start the site the way `make run` does and use it."""

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import processes
from tests.conftest import ROOT
from tests.processes import free_port

FLAGSHIP = "shipping-containers-without-dind"


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 90) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the site stopped with exit code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read()
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {seconds} seconds")


@pytest.fixture
def embedded_environment(tmp_path: Path) -> dict[str, str]:
    """The embedded defaults: no database or broker server named."""
    return processes.embedded_environment(tmp_path / "var")


@pytest.mark.smoke
def test_make_run_serves_lessons_and_runs_tasks_until_interrupted(embedded_environment):
    port = free_port()
    site = subprocess.Popen(
        [sys.executable, "scripts/serve.py", "--port", str(port)],
        cwd=ROOT,
        env=embedded_environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page = wait_for(f"http://localhost:{port}/lessons/{FLAGSHIP}/", site)
        catalogue = wait_for(f"http://localhost:{port}/?search=digest", site)

        # The worker started beside the web server serves tasks through the
        # file-based broker.
        task = subprocess.run(
            [
                sys.executable, "manage.py", "shell", "-c",
                "from lessons.models import Lesson; from lessons.tasks import lesson_rerender; "
                f"print('result', lesson_rerender.delay(Lesson.objects.get(slug='{FLAGSHIP}').pk).get(timeout=60))",
            ],
            cwd=ROOT, env=embedded_environment, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        site.send_signal(signal.SIGINT)
        exit_code = site.wait(timeout=30)

    assert b"Shipping containers without Docker-in-Docker" in page
    assert b"Graph Neighbourhood" in page
    assert b"<svg" in page
    assert b"Image digests" in catalogue
    assert "result False" in task.stdout, task.stderr
    assert exit_code == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://localhost:{port}/", timeout=2)
