"""Starting runs and waiting for them, and deployments as a run leaves
them, for the deployments tests."""

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from deployments import registry, services
from deployments.models import Deployment, Run, Step

FLAGSHIP = "shipping-containers-without-dind"
RUN_SECONDS = 120

PLAIN_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY www /www
USER 65534:65534
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
PLAIN_MANIFEST = """\
port: 8080
health_path: /health
"""


def run_wait(run: Run) -> Run:
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.active:
            return run
        time.sleep(0.1)
    raise AssertionError(f"Run {run.pk} did not end in {RUN_SECONDS} s")


def example_run(account, slug: str = FLAGSHIP, **options) -> Run:
    run = services.run_start(
        account=account, kind=Run.Kind.EXAMPLE, subject=slug, example=slug, **options
    )
    return run_wait(run)


def action_run(account, deployment: Deployment, kind: Run.Kind) -> Run:
    """Roll ``deployment`` back or tear it down, and wait for the run."""
    return run_wait(
        services.deployment_action_start(
            account=account, deployment=deployment, kind=kind
        )
    )


def flagship_recorded(owner) -> Deployment:
    """The flagship example's deployment as a finished run records it; no
    container stands behind it."""
    return Deployment.objects.create(
        name=FLAGSHIP,
        example=FLAGSHIP,
        repository=f"127.0.0.1:5055/examples/{FLAGSHIP}",
        digest="sha256:" + "b" * 64,
        container_name=f"{FLAGSHIP}-r1",
        owner=owner,
    )


def steps_of(run: Run) -> dict[str, Step]:
    return {step.name: step for step in run.steps.all()}


@contextmanager
def registry_elsewhere() -> Iterator[tuple[str, list[str]]]:
    """A registry other than the site's that asks every caller to sign in,
    as its address and the credentials callers sent it (one Authorization
    header, or "", per request)."""
    sent: list[str] = []

    class Challenging(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            sent.append(self.headers.get("Authorization") or "")
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="elsewhere"')
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadingHTTPServer(("127.0.0.1", port), Challenging)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{port}", sent
    finally:
        server.shutdown()
        server.server_close()


def site_password_in(sent: list[str]) -> bool:
    """Whether any Basic credentials sent hold the site registry's password."""
    _, password = registry.registry_auth()
    return any(
        password in base64.b64decode(header.split()[-1]).decode(errors="replace")
        for header in sent
        if header.startswith("Basic ")
    )
