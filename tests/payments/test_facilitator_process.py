"""The facilitator served as its own process by ``manage.py
facilitator_serve``, called by the official HTTP facilitator client and by
the site through ``X402_FACILITATOR_URL``."""

import os
import subprocess
import sys
from collections.abc import Iterator
from http import HTTPStatus

import pytest
import requests
from django.db import connection
from x402.http import FacilitatorConfig, HTTPFacilitatorClientSync
from x402.http.utils import decode_payment_response_header

from payments.models import Purchase, Transfer
from payments.selectors import balance_of
from tests.payments.factories import (
    ONE_AIN,
    PRICE,
    account_new,
    header_of,
    offer_of,
    payment_for,
    payment_signed,
)
from tests.processes import free_port, server_start, server_stop

pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    """The test database, as the process must reach it."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


@pytest.fixture
def facilitator_url(transactional_db, tmp_path) -> Iterator[str]:
    """``facilitator_serve`` on the test database, DEBUG off as in
    production."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = server_start(
        [sys.executable, "manage.py", "facilitator_serve",
         "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        environment={
            **os.environ,
            "DATABASE_URL": database_url(),
            "DEBUG": "false",
            "HOME": str(tmp_path / "home"),
        },
        ready_url=f"{url}/health/live",
        log=tmp_path / "facilitator.log",
    )  # fmt: skip
    try:
        yield url
    finally:
        server_stop(process)


def test_the_official_client_settles_through_the_process(
    facilitator_url, payer, payment, requirements, token
):
    client = HTTPFacilitatorClientSync(FacilitatorConfig(url=facilitator_url))

    supported = client.get_supported()
    verified = client.verify(payment, requirements)
    settled = client.settle(payment, requirements)
    replayed = client.settle(payment, requirements)
    client.close()

    assert [kind.network for kind in supported.kinds] == [token.network]
    assert verified.is_valid
    assert settled.success
    assert Transfer.objects.get(transaction=settled.transaction).units == PRICE
    assert replayed.error_reason == "invalid_exact_evm_nonce_already_used"
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE


def test_the_process_opens_no_control_socket_other_processes_share(
    facilitator_url, tmp_path
):
    # gunicorn's default one is ~/.gunicorn/gunicorn.ctl, one per user.
    assert not (tmp_path / "home" / ".gunicorn").exists()


def test_the_process_answers_only_the_facilitator_api(facilitator_url):
    for path in ("/", "/lessons/", "/admin/", "/facilitator/supported"):
        response = requests.get(f"{facilitator_url}{path}", timeout=5)

        assert response.status_code == HTTPStatus.NOT_FOUND, path
        assert response.json() == {"detail": "Not found."}


def test_a_refused_payment_is_refused_by_the_process(facilitator_url, requirements):
    client = HTTPFacilitatorClientSync(FacilitatorConfig(url=facilitator_url))

    verified = client.verify(payment_signed(account_new(), requirements), requirements)
    client.close()

    assert (verified.is_valid, verified.invalid_reason) == (False, "insufficient_funds")


def test_the_site_sells_through_the_process(
    facilitator_url, client, lesson, payer, token, settings
):
    settings.X402_FACILITATOR_URL = facilitator_url
    offer = offer_of(client.get(f"/api/lessons/{lesson.slug}/content"))

    response = client.get(
        f"/api/lessons/{lesson.slug}/content",
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert response.status_code == HTTPStatus.OK
    receipt = decode_payment_response_header(response["PAYMENT-RESPONSE"])
    assert receipt.success
    assert Purchase.objects.get(transaction=receipt.transaction).lesson == lesson
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("--workers", "0", "at least 1 answers requests"),
        ("--workers", "-1", "at least 1 answers requests"),
        ("--bind", "127.0.0.1:99999", "a port is 1 to 65535"),
        ("--bind", "127.0.0.1", "is not HOST:PORT"),
    ],
)
def test_facilitator_serve_refuses_what_gunicorn_could_not_serve(
    option, value, problem
):
    # A process, not call_command: a command that let the value through
    # would put gunicorn in the place of the test run itself.
    arguments = {"--bind": f"127.0.0.1:{free_port()}", "--workers": "1"}
    arguments[option] = value
    command = [sys.executable, "manage.py", "facilitator_serve"]
    for name, given in arguments.items():
        command += [name, given]

    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as still_running:
        pytest.fail(f"facilitator_serve took {option} {value}: {still_running}")

    assert finished.returncode != 0
    assert problem in finished.stderr
    assert "The facilitator is at" not in finished.stdout
