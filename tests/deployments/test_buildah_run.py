"""How a buildah call is waited on: its deadline, the heartbeat while it
runs, its output and its failure. A shell stands in for buildah, so that
the call's length is ours to choose."""

import shutil
import time

import pytest

from deployments import buildah


@pytest.fixture(autouse=True)
def shell_as_buildah(monkeypatch):
    sh = shutil.which("sh")
    assert sh is not None
    monkeypatch.setattr(buildah, "buildah_binary", lambda: sh)


def test_a_call_past_its_deadline_is_killed_and_says_so():
    started = time.monotonic()

    with pytest.raises(buildah.BuildahError, match="ran past its 1 s deadline"):
        buildah.buildah_run(["-c", "sleep 30"], timeout=1)

    assert time.monotonic() - started < 5


def test_a_long_call_moves_the_heartbeat_while_it_runs(monkeypatch):
    monkeypatch.setattr(buildah, "BEAT_SECONDS", 0.1)
    beats: list[float] = []

    buildah.buildah_run(
        ["-c", "sleep 0.55"], timeout=10, on_wait=lambda: beats.append(1.0)
    )

    assert 3 <= len(beats) <= 6


def test_a_failed_call_reports_its_last_lines():
    with pytest.raises(buildah.BuildahError, match=r"failed \(3\): no such image"):
        buildah.buildah_run(["-c", "echo no such image; exit 3"], timeout=10)


def test_each_output_line_is_passed_on_as_it_comes():
    lines: list[str] = []

    output = buildah.buildah_run(
        ["-c", "echo one; echo; echo two"], timeout=10, on_line=lines.append
    )

    assert lines == ["one", "two"]
    assert output == "one\n\ntwo"
