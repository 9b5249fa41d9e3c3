"""buildah, the daemonless builder: the one module that runs it.

Each call is a subprocess with a deadline; output lines are passed on as
they come. Registry credentials go through an auth file (mode 0600), never
the command line, where any user could read them.
"""

import base64
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from deployments.registry import registry_auth

logger = logging.getLogger(__name__)

Lines = Callable[[str], None]
Beat = Callable[[], None]
# How often a long buildah call lets the run's heartbeat move, in seconds.
BEAT_SECONDS = 1.0


def _no_beat() -> None:
    pass


class BuildahError(Exception):
    """buildah is missing, failed or ran past its deadline."""


def buildah_binary() -> str:
    binary = shutil.which("buildah")
    if binary is None:
        raise BuildahError("buildah is missing: apt-get install buildah")
    return binary


def auth_file() -> Path:
    """A containers-auth.json for our registry, rewritten on each use so a
    changed password takes effect."""
    username, password = registry_auth()
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    path = settings.DEPLOYMENTS_DIR / "buildah-auth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"auths": {settings.DEPLOYMENTS_REGISTRY: {"auth": token}}}, file)
    return path


def _ended_with_us() -> list[str]:
    """A prefix that has the kernel send buildah SIGTERM if the process that
    started it dies (a worker killed mid-run), on which buildah removes its
    working container; in a session of its own it would otherwise build on,
    die at its next line of output with no one reading, and leave that
    container behind. Without setpriv (util-linux), nothing.

    Limitation: killed in the moment it sets a stage up, before its first
    step runs, buildah still leaves that stage's working container."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM"] if setpriv else []


def buildah_run(
    arguments: list[str],
    *,
    timeout: float,
    on_line: Lines | None = None,
    on_wait: Beat = _no_beat,
) -> str:
    """Run buildah, passing each output line on; return the output. Killed
    at the deadline. ``on_wait`` is called every second while it runs,
    silent or not."""
    command = [*_ended_with_us(), buildah_binary(), *arguments]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            if on_line is not None and line.strip():
                on_line(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Popen.wait(timeout=...) polls, sleeping up to 50 ms between looks; a
    # thread blocked in wait() learns of the exit at once, and this one
    # waits on it, waking every BEAT_SECONDS for the heartbeat.
    exited = threading.Event()

    def wait() -> None:
        process.wait()
        exited.set()

    threading.Thread(target=wait, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not exited.wait(min(BEAT_SECONDS, max(deadline - time.monotonic(), 0))):
        if time.monotonic() >= deadline:
            process.kill()
            process.wait()
            raise BuildahError(
                f"buildah {arguments[0]} ran past its {timeout:.0f} s deadline."
            )
        on_wait()
    reader.join(timeout=5)
    if process.returncode != 0:
        last = "\n".join(output[-5:])
        raise BuildahError(
            f"buildah {arguments[0]} failed ({process.returncode}): {last}"
        )
    return "\n".join(output)


def buildah_build(
    *,
    context: Path,
    tag: str,
    secret_files: dict[str, Path],
    on_line: Lines,
    on_wait: Beat = _no_beat,
) -> str:
    """Build the context's Dockerfile; build-time secrets are secret mounts
    (``RUN --mount=type=secret,id=NAME``). Docker format keeps the
    HEALTHCHECK. Return the image id."""
    arguments = [
        "bud",
        "--format", "docker",
        "--authfile", str(auth_file()),
        "--tls-verify=false",
        # buildah's --pull=false pulls the base only when it is not stored
        # yet, without asking the registry whether it changed.
        "--pull=false",
        "--iidfile", str(context.parent / "image-id"),
        "--build-arg", f"BASE_IMAGE={settings.DEPLOYMENTS_BASE_IMAGE}",
        "-t", tag,
    ]  # fmt: skip
    for name, path in secret_files.items():
        arguments += ["--secret", f"id={name},src={path}"]
    arguments.append(str(context))
    buildah_run(
        arguments,
        timeout=settings.DEPLOYMENTS_BUILD_TIMEOUT_SECONDS,
        on_line=on_line,
        on_wait=on_wait,
    )
    return (context.parent / "image-id").read_text().strip()


def buildah_archive(image: str, destination: Path, on_wait: Beat = _no_beat) -> None:
    """Write the image as a docker-archive (what ``docker save`` makes)."""
    destination.unlink(missing_ok=True)
    buildah_run(
        ["push", "--quiet", image, f"docker-archive:{destination}"],
        timeout=120,
        on_wait=on_wait,
    )


def buildah_push(
    *, image: str, destination: str, on_line: Lines, on_wait: Beat = _no_beat
) -> str:
    """Push to our registry; return the digest the registry holds."""
    with tempfile.TemporaryDirectory() as folder:
        digest_file = Path(folder) / "digest"
        buildah_run(
            [
                "push",
                "--authfile", str(auth_file()),
                "--tls-verify=false",
                "--digestfile", str(digest_file),
                image,
                f"docker://{destination}",
            ],
            timeout=settings.DEPLOYMENTS_BUILD_TIMEOUT_SECONDS,
            on_line=on_line,
            on_wait=on_wait,
        )  # fmt: skip
        digest = digest_file.read_text().strip()
    if not digest.startswith("sha256:"):
        raise BuildahError(f"buildah push to {destination} reported no digest.")
    return digest


def buildah_remove(image: str) -> bool:
    try:
        buildah_run(["rmi", "--force", image], timeout=60)
    except BuildahError:
        return False
    return True


def base_image_build(*, busybox: Path, destination: str, on_line: Lines) -> str:
    """Make the base image from a static busybox (no public registry is
    reachable) and push it to our registry; return its digest.

    1. Lay out a root filesystem: busybox and a link per applet, a nobody
       account, /tmp and /www.
    2. Commit it as an image from scratch, in Docker format.
    3. Push it.
    """
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            for directory in ("bin", "etc", "tmp", "www", "run", "run/secrets"):
                entry = tarfile.TarInfo(directory)
                entry.type = tarfile.DIRTYPE
                entry.mode = 0o1777 if directory == "tmp" else 0o755
                tar.addfile(entry)
            tar.add(busybox, arcname="bin/busybox")
            for applet in applets:
                if applet == "busybox":
                    continue
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
            for name, text in {
                "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
                "etc/group": "root:x:0:\nnogroup:x:65534:\n",
            }.items():
                content = text.encode()
                entry = tarfile.TarInfo(name)
                entry.size, entry.mode = len(content), 0o644
                tar.addfile(entry, io.BytesIO(content))
        container = (
            buildah_run(["from", "scratch"], timeout=60).strip().splitlines()[-1]
        )
        try:
            buildah_run(["add", container, str(archive), "/"], timeout=60)
            buildah_run(
                ["config", "--cmd", "/bin/sh", "--env", "PATH=/bin", container],
                timeout=30,
            )
            buildah_run(
                ["commit", "--format", "docker", container, destination],
                timeout=120,
                on_line=on_line,
            )
        finally:
            buildah_run(["rm", container], timeout=60)
    return buildah_push(image=destination, destination=destination, on_line=on_line)
