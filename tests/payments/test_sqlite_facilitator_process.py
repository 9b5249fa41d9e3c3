"""The embedded configuration (SQLite) selling through the facilitator
served as its own process, sharing the database: the site and the
facilitator run as processes of their own, as an operator would start
them, and an account's program buys with its API token."""

import subprocess
import sys
import time
from collections.abc import Iterator
from http import HTTPStatus

import pytest
import requests
from eth_account import Account
from x402.http.utils import decode_payment_response_header

from payments.management.commands.x402_fetch import paying_session
from payments.token import token_configured
from tests.conftest import ROOT
from tests.processes import (
    embedded_environment,
    free_port,
    server_start,
    server_stop,
)

LESSON = "daemonless-builds-with-buildah"
# An account, its API token and a funded key of its own, printed for the test.
SETUP = """
from accounts.models import User
from accounts.services import token_create
from eth_account import Account
from payments.services import wallet_fund
user = User.objects.create(username="Hedy")
_, secret = token_create(user=user, name="buyer")
key = Account.create()
wallet_fund(address=key.address, amount=10**18)
print(secret, key.key.hex())
"""


def manage(environment: dict[str, str], *arguments: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
        check=True,
    ).stdout  # fmt: skip


@pytest.fixture
def embedded_site(tmp_path) -> Iterator[tuple[str, dict[str, str]]]:
    """The site on SQLite and its facilitator as another process."""
    environment = embedded_environment(tmp_path)
    manage(environment, "migrate", "--noinput")
    manage(environment, "load_bundled")

    facilitator_port, site_port = free_port(), free_port()
    facilitator = server_start(
        [sys.executable, "manage.py", "facilitator_serve", "--bind",
         f"127.0.0.1:{facilitator_port}", "--workers", "1"],
        environment=environment,
        ready_url=f"http://127.0.0.1:{facilitator_port}/supported",
        log=tmp_path / "facilitator.log",
    )  # fmt: skip
    site_environment = {
        **environment,
        "X402_FACILITATOR_URL": f"http://127.0.0.1:{facilitator_port}",
    }
    site = server_start(
        [sys.executable, "manage.py", "runserver", "--noreload",
         f"127.0.0.1:{site_port}"],
        environment=site_environment,
        ready_url=f"http://127.0.0.1:{site_port}/health/live",
        log=tmp_path / "site.log",
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{site_port}", environment
    finally:
        server_stop(site)
        server_stop(facilitator)


def test_an_account_buys_with_its_token_through_the_facilitator_process(
    embedded_site,
):
    site, environment = embedded_site
    secret, key = manage(environment, "shell", "-c", SETUP).splitlines()[-1].split()
    session = paying_session(Account.from_key(key), token_configured(), cap=10**18)
    session.headers["Authorization"] = f"Bearer {secret}"
    url = f"{site}/api/lessons/{LESSON}/content"

    started_at = time.monotonic()
    bought = session.get(url, timeout=30)
    took = time.monotonic() - started_at
    again = requests.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=10)

    assert bought.status_code == HTTPStatus.OK, bought.text
    assert took < 5, f"the sale waited {took:.1f} s"
    receipt = decode_payment_response_header(bought.headers["PAYMENT-RESPONSE"])
    assert receipt.success
    assert again.status_code == HTTPStatus.OK
    assert "PAYMENT-RESPONSE" not in again.headers
    audit = subprocess.run(
        [sys.executable, "manage.py", "ledger_audit"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr
