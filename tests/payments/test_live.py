"""The facilitator served for real and called by the official tools: the
x402 package's HTTP facilitator client and the x402-conformance checker."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from x402.http import FacilitatorConfig, HTTPFacilitatorClientSync

from payments.selectors import balance_of
from tests.payments.factories import ONE_AIN, PRICE, account_new, payment_signed

pytestmark = [
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def facilitator(live_server):
    client = HTTPFacilitatorClientSync(
        FacilitatorConfig(url=f"{live_server.url}/facilitator")
    )
    yield client
    client.close()


def test_official_client_reads_what_we_support(facilitator, token):
    supported = facilitator.get_supported()

    assert [
        (kind.x402_version, kind.scheme, kind.network) for kind in supported.kinds
    ] == [(2, "exact", token.network)]


def test_official_client_verifies_then_settles(
    facilitator, payment, requirements, payer, token
):
    verified = facilitator.verify(payment, requirements)
    settled = facilitator.settle(payment, requirements)
    replayed = facilitator.settle(payment, requirements)

    assert (verified.is_valid, verified.payer) == (True, payer.address)
    assert settled.success
    assert settled.transaction.startswith("0x")
    assert settled.network == token.network
    assert (replayed.success, replayed.error_reason) == (
        False,
        "invalid_exact_evm_nonce_already_used",
    )
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE


def test_official_client_reads_a_refusal(facilitator, requirements):
    payment = payment_signed(account_new(), requirements)

    verified = facilitator.verify(payment, requirements)

    assert (verified.is_valid, verified.invalid_reason) == (False, "insufficient_funds")


def test_conformance_checker_passes_our_facilitator(live_server, tmp_path):
    checker = Path(sys.executable).parent / "x402conf"

    run = subprocess.run(
        [
            str(checker),
            "live",
            "--fail-on-error",
            "--evidence",
            str(tmp_path),
            f"{live_server.url}/facilitator",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    checks = json.loads(run.stdout)["results"][0]["checks"]
    assert [check["check"][:2] for check in checks] == ["S1", "S2", "S3", "S4"]
    assert all(check["pass"] for check in checks), checks
