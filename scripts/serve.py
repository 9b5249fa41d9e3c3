"""Serve the site on its embedded defaults, as ``make run`` does.

1. Migrate the database (SQLite under ``var/`` unless DATABASE_URL says
   otherwise) and load the bundled papers and lessons; both are idempotent.
2. Start a Celery worker (with beat) and the web server, each in its own
   process group.
3. On Ctrl-C or SIGTERM, or when either process dies, stop both.
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STOP_GRACE_SECONDS = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Passkeys are bound to the origin the browser sees.
    os.environ.setdefault("WEBAUTHN_ORIGINS", f"http://localhost:{arguments.port}")

    for command in (["migrate", "--noinput"], ["load_bundled"]):
        subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, check=True)
    # The registry and base image for deployments, when the engine is there;
    # otherwise it says what is missing and the site serves all the same.
    subprocess.run([PYTHON, "manage.py", "deployments_prepare"], cwd=ROOT, check=False)

    # The worker runs Celery beat too (the daily refresh of papers); its
    # schedule file sits beside the embedded broker's folders.
    beat_schedule = Path(os.environ.get("DATA_DIR", ROOT / "var")) / "celery" / "beat"
    processes = [
        start([PYTHON, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO",
               "--concurrency=2", "--without-gossip", "--without-mingle",
               "--without-heartbeat", "--beat", f"--schedule={beat_schedule}"]),
        start([PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{arguments.port}"]),
    ]  # fmt: skip
    print(
        f"Lessongraph is at http://localhost:{arguments.port}/ (Ctrl-C stops it)",
        flush=True,
    )

    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping and all(process.poll() is None for process in processes):
        time.sleep(0.2)

    failed = [process for process in processes if process.poll() not in (None, 0)]
    stop(processes)
    subprocess.run(
        [PYTHON, "manage.py", "registry", "stop"],
        cwd=ROOT,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return 1 if failed and not stopping else 0


def start(command: list[str]) -> subprocess.Popen[bytes]:
    # A process group of its own, so stopping it reaches its children too.
    return subprocess.Popen(command, cwd=ROOT, start_new_session=True)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Ask each process to stop (the worker then stops its own pool), and
    kill what is left of its group after the grace period."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
