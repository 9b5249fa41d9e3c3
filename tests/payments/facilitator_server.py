"""A facilitator on a local port that speaks the standard API and can
misbehave, one endpoint at a time: answer properly (it relays to the site's
own facilitator), hang past the client's timeout, answer garbage or an
error status, or settle and then lose its answer."""

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.db import connection
from x402.schemas import (
    SettleRequest,
    SupportedKind,
    SupportedResponse,
    VerifyRequest,
    VerifyResponse,
)

from payments import facilitators

OK = "ok"
SLOW = "slow"
GARBAGE = "garbage"
WRONG_SHAPE = "wrong-shape"
ERROR = "error"
REFUSE = "refuse"
# JSON escaping half of a UTF-16 pair: it parses, but is no UTF-8 text.
UNPAIRED = "unpaired"
OVERSIZED = "oversized"
# A settlement said to have succeeded, in a transaction id with a slash.
ODD_TRANSACTION = "odd-transaction"
# Settle on the site's ledger, then lose the answer: garble it, or send it
# only after the client gave up.
SETTLED_GARBLED = "settled-garbled"
SETTLED_LATE = "settled-late"
REFUSAL_MESSAGE = "The remote facilitator says no."


class FacilitatorServer:
    def __init__(self, *, delay: float = 2.0) -> None:
        self.modes = {"supported": OK, "verify": OK, "settle": OK}
        # The networks /supported lists; None: the site facilitator's.
        self.networks: list[str] | None = None
        self.delay = delay
        self.calls: list[str] = []
        # Called with the endpoint before each answer.
        self.watch: Callable[[str], None] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FacilitatorServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()

    def supported(self) -> SupportedResponse:
        if self.networks is None:
            return facilitators.supported_answer()
        kinds = [
            SupportedKind(x402_version=2, scheme="exact", network=network)
            for network in self.networks
        ]
        return SupportedResponse(kinds=kinds, extensions=[], signers={})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        facilitator = self

        class Handler(BaseHTTPRequestHandler):
            def handle(self) -> None:
                try:
                    super().handle()
                finally:
                    # Each request runs in a thread of its own; its database
                    # connection, left open, would keep the test database
                    # from being dropped at the end of the session.
                    connection.close()

            def do_GET(self) -> None:
                self._answer("supported", facilitator.supported)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                if self.path.endswith("/verify"):
                    request = VerifyRequest.model_validate(body)
                    self._answer(
                        "verify",
                        lambda: facilitators.verify_answer(
                            payload=request.payment_payload,
                            requirements=request.payment_requirements,
                        ),
                    )
                else:
                    settle = SettleRequest.model_validate(body)
                    self._answer(
                        "settle",
                        lambda: facilitators.settle_answer(
                            payload=settle.payment_payload,
                            requirements=settle.payment_requirements,
                        ),
                    )

            def _answer(self, endpoint, answer) -> None:
                facilitator.calls.append(endpoint)
                if facilitator.watch is not None:
                    facilitator.watch(endpoint)
                mode = facilitator.modes[endpoint]
                if mode in (SETTLED_GARBLED, SETTLED_LATE):
                    answer()
                    if mode == SETTLED_GARBLED:
                        return self._send(200, b"<html>upstream hiccup</html>")
                    time.sleep(facilitator.delay)
                    return self._send(503, b"")
                if mode == SLOW:
                    time.sleep(facilitator.delay)
                    return self._send(503, b"")
                if mode == GARBAGE:
                    return self._send(200, b"<html>upstream hiccup</html>")
                if mode == WRONG_SHAPE:
                    return self._send(200, json.dumps({"hello": "world"}).encode())
                if mode == ERROR:
                    return self._send(500, b'{"error": "internal"}')
                if mode == ODD_TRANSACTION:
                    document = {
                        "success": True,
                        "transaction": "0xab/../cd",
                        "network": "eip155:31337",
                    }
                    return self._send(200, json.dumps(document).encode())
                if mode in (UNPAIRED, OVERSIZED):
                    return self._send(200, odd_answer(endpoint, mode))
                reply = (
                    VerifyResponse(
                        is_valid=False,
                        invalid_reason="insufficient_funds",
                        invalid_message=REFUSAL_MESSAGE,
                    )
                    if mode == REFUSE
                    else answer()
                )
                document = reply.model_dump(
                    mode="json", by_alias=True, exclude_none=True
                )
                self._send(200, json.dumps(document).encode())

            def _send(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def odd_answer(endpoint: str, mode: str) -> bytes:
    """A refused verification, or a settlement said to have succeeded,
    whose text holds a lone surrogate or runs to 100 kB."""
    text = "\\ud800" if mode == UNPAIRED else "x" * 100_000
    if endpoint == "verify":
        fields = (
            f'"isValid": false, "invalidReason": "{text}", "invalidMessage": "{text}"'
        )
    else:
        fields = (
            f'"success": true, "transaction": "0x{text}", '
            f'"network": "eip155:31337", "errorReason": "{text}"'
        )
    return ("{" + fields + "}").encode()


def closed_port_url() -> str:
    """An address where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
