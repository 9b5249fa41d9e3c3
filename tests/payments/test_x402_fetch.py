"""x402_fetch's refusals before anything is paid. Buying through it, with
a live server, is in test_gate_live.py."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command

from payments.services import wallet_create
from tests.payments.facilitator_server import closed_port_url

pytestmark = pytest.mark.django_db


def fetch(*args: str) -> None:
    call_command("x402_fetch", *args)


def test_missing_key_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        fetch("http://127.0.0.1:9/", "--key-file", str(tmp_path / "none.key"))


def test_key_file_without_a_key_is_refused_without_echoing_it(tmp_path):
    key_file = tmp_path / "bad.key"
    key_file.write_text("0xnot-a-key-but-secret\n")

    with pytest.raises(CommandError) as refused:
        fetch("http://127.0.0.1:9/", "--key-file", str(key_file))

    assert "does not hold a private key" in str(refused.value)
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize("amount", ["-1", "1e3", "0.0000000000000000001"])
def test_bad_spending_cap_is_refused(amount):
    with pytest.raises(CommandError, match="--max-amount"):
        fetch("http://127.0.0.1:9/", "--key-file", "x", "--max-amount", amount)


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "soon"])
def test_bad_timeout_is_refused_before_anything_is_asked(tmp_path, seconds):
    key_file = tmp_path / "wallet.key"
    wallet_create(key_file=key_file)

    with pytest.raises(CommandError, match=r"--timeout: .* seconds above zero"):
        fetch(
            closed_port_url() + "/api/lessons/a/content",
            "--key-file",
            str(key_file),
            "--timeout",
            seconds,
        )


def test_unreachable_url_is_reported(tmp_path):
    key_file = tmp_path / "wallet.key"
    wallet_create(key_file=key_file)

    with pytest.raises(CommandError, match="Cannot fetch"):
        fetch(closed_port_url() + "/api/lessons/a/content", "--key-file", str(key_file))


class MalformedOffer(BaseHTTPRequestHandler):
    """Answers every request 402 with an offer whose accepts is not a list."""

    def do_GET(self) -> None:
        body = json.dumps({"x402Version": 2, "accepts": "nope"}).encode()
        self.send_response(402)
        self.send_header("PAYMENT-REQUIRED", base64.b64encode(body).decode())
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_offer_the_client_cannot_read_is_named_field_by_field(tmp_path):
    key_file = tmp_path / "wallet.key"
    wallet_create(key_file=key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), MalformedOffer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(CommandError) as refused:
            fetch(
                f"http://127.0.0.1:{server.server_port}/x", "--key-file", str(key_file)
            )
    finally:
        server.shutdown()
        server.server_close()

    assert str(refused.value) == (
        "Not paid: the server's payment offer (PAYMENT-REQUIRED) is malformed: "
        "accepts: Input should be a valid list."
    )
