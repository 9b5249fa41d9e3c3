"""Selling lessons to programs over real HTTP: the official client, one
payment sent many times at once, the conformance checker, and facilitators
reached over HTTP, well-behaved or not."""

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connections
from x402.http.utils import decode_payment_response_header

from payments.models import Purchase, Transfer
from payments.selectors import balance_of
from payments.services import wallet_create, wallet_fund
from tests.payments.facilitator_server import (
    ERROR,
    GARBAGE,
    ODD_TRANSACTION,
    OK,
    OVERSIZED,
    REFUSAL_MESSAGE,
    REFUSE,
    SETTLED_GARBLED,
    SETTLED_LATE,
    SLOW,
    UNPAIRED,
    WRONG_SHAPE,
    FacilitatorServer,
    closed_port_url,
)
from tests.payments.factories import (
    ONE_AIN,
    PRICE,
    header_of,
    offer_of,
    payment_for,
)
from tests.payments.test_bundles import bundle_url, path_made

pytestmark = pytest.mark.django_db(transaction=True)

PARALLEL = 8


def content_path(lesson) -> str:
    return f"/api/lessons/{lesson.slug}/content"


@pytest.fixture
def buyer(tmp_path, db) -> tuple[Path, str]:
    """A key file and its wallet, holding 1 AIN."""
    key_file = tmp_path / "buyer.key"
    address = wallet_create(key_file=key_file)
    wallet_fund(address=address, amount=ONE_AIN)
    return key_file, address


def fetch(url: str, key_file: Path, *options: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(
        "x402_fetch", url, "--key-file", str(key_file), *options, stdout=out, stderr=err
    )
    return out.getvalue(), err.getvalue()


def test_program_buys_a_lesson_with_the_official_client(
    live_server, lesson, buyer, token, site_wallet
):
    key_file, address = buyer

    content, receipt = fetch(f"{live_server.url}{content_path(lesson)}", key_file)

    assert content == lesson.body
    assert balance_of(token=token, address=address) == ONE_AIN - PRICE
    assert balance_of(token=token, address=site_wallet) == PRICE
    purchase = Purchase.objects.get()
    assert (purchase.lesson, purchase.payer, purchase.units) == (lesson, address, PRICE)
    assert f"Paid 0.005 AIN from {address}" in receipt
    assert purchase.transaction in receipt
    assert '"slug": "' + lesson.slug in receipt


def test_program_buys_a_path_bundle_as_json_by_default(live_server, buyer, token):
    _, middle, goal = path_made()
    key_file, address = buyer

    content, _ = fetch(f"{live_server.url}{bundle_url(goal)}", key_file)

    bundled = json.loads(content)
    assert [lesson["slug"] for lesson in bundled["lessons"]] == [
        "basics",
        "middle",
        "goal",
    ]
    paid = ONE_AIN - balance_of(token=token, address=address)
    assert paid == token.units_from_text("0.007")
    assert {purchase.lesson for purchase in Purchase.objects.all()} == {middle, goal}


def test_program_pays_nothing_above_its_cap(live_server, lesson, buyer, token):
    key_file, address = buyer

    with pytest.raises(CommandError) as refused:
        fetch(
            f"{live_server.url}{content_path(lesson)}",
            key_file,
            "--max-amount",
            "0.001",
        )

    assert str(refused.value) == (
        "Not paid: the price, 0.005 AIN, is above --max-amount 0.001 AIN; nothing "
        "was paid. Pass --max-amount 0.005 to pay it."
    )
    assert balance_of(token=token, address=address) == ONE_AIN
    assert not Purchase.objects.exists()


def test_program_is_told_why_a_payment_was_refused(live_server, lesson, tmp_path):
    key_file = tmp_path / "empty.key"
    wallet_create(key_file=key_file)

    with pytest.raises(CommandError, match="insufficient_funds"):
        fetch(f"{live_server.url}{content_path(lesson)}", key_file)


def test_program_reads_a_free_lesson_without_paying(live_server, buyer):
    from tests.lessons.factories import LessonFactory

    free = LessonFactory(body="Free for all.\n")

    content, receipt = fetch(f"{live_server.url}{content_path(free)}", buyer[0])

    assert content == "Free for all.\n"
    assert "Nothing was paid" in receipt


def test_one_payment_sent_many_times_at_once_buys_once(
    live_server, lesson, payer, token, site_wallet
):
    url = f"{live_server.url}{content_path(lesson)}"
    offer = offer_of(requests.get(url, timeout=30).headers)
    payment = header_of(payment_for(payer, offer))
    start = threading.Barrier(PARALLEL)

    def attempt(_: int) -> requests.Response:
        start.wait()
        return requests.get(url, headers={"PAYMENT-SIGNATURE": payment}, timeout=60)

    with ThreadPoolExecutor(PARALLEL) as pool:
        responses = list(pool.map(attempt, range(PARALLEL)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [402] * (PARALLEL - 1)
    [sold] = [response for response in responses if response.status_code == 200]
    assert "The paid part." in sold.json()["markdown"]
    assert all("markdown" not in r.json() for r in responses if r is not sold)
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE
    assert balance_of(token=token, address=site_wallet) == PRICE
    assert Transfer.objects.filter(kind=Transfer.Kind.SETTLEMENT).count() == 1
    assert Purchase.objects.count() == 1


def test_conformance_checker_passes_our_402_answer(live_server, lesson):
    checker = Path(sys.executable).parent / "x402conf"

    run = subprocess.run(
        [
            str(checker),
            "resource",
            "--fail-on-error",
            f"{live_server.url}{content_path(lesson)}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    checks = json.loads(run.stdout)["results"][0]["checks"]
    assert {check["check"][:2] for check in checks} >= {"P1", "P2", "P3", "P4", "P5"}
    assert all(check["pass"] for check in checks), checks


def test_sale_settled_by_a_facilitator_over_http(
    live_server, client, lesson, payer, token, settings
):
    settings.X402_FACILITATOR_URL = f"{live_server.url}/facilitator"
    offer = offer_of(client.get(content_path(lesson)))

    response = client.get(
        content_path(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert response.status_code == HTTPStatus.OK
    assert decode_payment_response_header(response["PAYMENT-RESPONSE"]).success
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE
    assert Purchase.objects.get().lesson == lesson


@pytest.fixture
def remote(settings):
    """A facilitator on a local port, and the site set to use it, with a
    short timeout."""
    server = FacilitatorServer(delay=1.5).start()
    settings.X402_FACILITATOR_URL = server.url
    settings.X402_FACILITATOR_TIMEOUT_SECONDS = 0.4
    yield server
    server.stop()


def assert_nothing_sold(response, payer, token) -> None:
    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED, response.content
    assert "markdown" not in response.json()
    assert balance_of(token=token, address=payer.address) == ONE_AIN
    assert not Purchase.objects.exists()
    assert not Transfer.objects.filter(kind=Transfer.Kind.SETTLEMENT).exists()


def test_sale_to_a_program_holds_no_transaction_while_a_remote_facilitator_answers(
    client, lesson, payer, token, remote
):
    # On SQLite an open transaction locks the whole database: a facilitator
    # sharing it (facilitator_serve) would wait for the sale to end, and the
    # sale for the facilitator, until the client gave up; the payment would
    # then settle with nothing delivered.
    offer = offer_of(client.get(content_path(lesson)))
    site = connections["default"]  # the test client runs the view here
    seen: list[tuple[str, bool]] = []
    remote.watch = lambda endpoint: seen.append((endpoint, site.in_atomic_block))

    response = client.get(
        content_path(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert response.status_code == HTTPStatus.OK
    assert seen == [("verify", False), ("settle", False)]
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE
    assert Purchase.objects.get().lesson == lesson


@pytest.mark.parametrize("endpoint", ["verify", "settle"])
@pytest.mark.parametrize(
    "mode", [SLOW, GARBAGE, WRONG_SHAPE, ERROR, UNPAIRED, OVERSIZED, ODD_TRANSACTION]
)
def test_misbehaving_facilitator_delivers_nothing_and_charges_nothing(
    client, lesson, payer, token, remote, endpoint, mode
):
    offer = offer_of(client.get(content_path(lesson)))
    remote.modes[endpoint] = mode

    response = client.get(
        content_path(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert_nothing_sold(response, payer, token)
    assert response.json()["reason"] == "facilitator_unavailable"
    if endpoint == "settle":
        settlement = decode_payment_response_header(response["PAYMENT-RESPONSE"])
        assert not settlement.success


@pytest.mark.parametrize("mode", [SETTLED_GARBLED, SETTLED_LATE])
def test_settlement_whose_answer_is_lost_is_found_on_the_ledger_and_delivered(
    client, lesson, payer, token, remote, mode
):
    offer = offer_of(client.get(content_path(lesson)))
    remote.modes["settle"] = mode

    response = client.get(
        content_path(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert response.status_code == HTTPStatus.OK, response.content
    assert "markdown" in response.json()
    settlement = decode_payment_response_header(response["PAYMENT-RESPONSE"])
    transfer = Transfer.objects.get(kind=Transfer.Kind.SETTLEMENT)
    assert settlement.success and settlement.transaction == transfer.transaction
    assert Purchase.objects.get().transaction == transfer.transaction
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE


def test_settlement_not_confirmed_tells_the_payer_what_to_ask_about(
    client, lesson, payer, token, remote
):
    offer = offer_of(client.get(content_path(lesson)))
    remote.modes["settle"] = SLOW
    payment = payment_for(payer, offer)

    response = client.get(
        content_path(lesson), headers={"PAYMENT-SIGNATURE": header_of(payment)}
    )

    assert_nothing_sold(response, payer, token)
    message = response.json()["error"]
    assert "may have settled the payment" in message
    assert payment.payload["authorization"]["nonce"] in message
    assert payer.address in message


def test_facilitator_gone_after_start_delivers_nothing(
    client, lesson, payer, token, remote
):
    offer = offer_of(client.get(content_path(lesson)))
    remote.stop()

    response = client.get(
        content_path(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert_nothing_sold(response, payer, token)
    assert response.json()["reason"] == "facilitator_unavailable"


@pytest.mark.parametrize("mode", [SLOW, GARBAGE, WRONG_SHAPE, ERROR])
def test_facilitator_failing_from_the_start_still_offers_the_lesson(
    client, lesson, remote, mode
):
    remote.modes["supported"] = mode

    responses = [client.get(content_path(lesson)) for _ in range(3)]

    assert {response.status_code for response in responses} == {402}
    assert offer_of(responses[-1]).accepts[0].amount == str(PRICE)
    # Asked again later, not at every request.
    assert remote.calls.count("supported") == 1


@pytest.mark.parametrize("mode", [SLOW, GARBAGE, WRONG_SHAPE, ERROR])
def test_payment_while_the_facilitator_fails_from_the_start_is_refused_with_a_reason(
    client, lesson, payer, token, remote, mode
):
    # Before, the site answered 503 to every request, paid or not, until
    # /supported answered: no offer, and no reason for the payer.
    remote.modes = {"supported": mode, "verify": mode, "settle": mode}
    offer = offer_of(client.get(content_path(lesson)))

    response = client.get(
        content_path(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert_nothing_sold(response, payer, token)
    assert response.json()["reason"] == "facilitator_unavailable"


def test_facilitator_down_from_the_start_refuses_payments_with_a_reason(
    client, lesson, payer, token, settings
):
    settings.X402_FACILITATOR_URL = closed_port_url()
    offer = offer_of(client.get(content_path(lesson)))

    response = client.get(
        content_path(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert_nothing_sold(response, payer, token)
    assert response.json()["reason"] == "facilitator_unavailable"


def test_facilitator_back_after_a_failed_start_is_asked_again(
    client, lesson, payer, token, remote, monkeypatch
):
    from payments import resource_server

    monkeypatch.setattr(resource_server, "ASK_AGAIN_SECONDS", 0.0)
    remote.modes["supported"] = ERROR
    offer = offer_of(client.get(content_path(lesson)))
    remote.modes["supported"] = OK

    response = client.get(
        content_path(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert response.status_code == HTTPStatus.OK
    assert remote.calls.count("supported") == 2


def test_offer_settled_elsewhere_is_offered_and_sent_to_its_facilitator(
    client, lesson, payer, settings
):
    remote = FacilitatorServer().start()
    remote.networks = ["eip155:84532"]
    remote.modes["verify"] = REFUSE
    settings.X402_OFFERS = [
        {"scheme": "exact"},
        {
            "scheme": "exact",
            "network": "eip155:84532",
            "asset": "0x4444444444444444444444444444444444444444",
            "symbol": "AIN",
            "name": "Bridged AIN",
            "version": "1",
            "decimals": 18,
            "pay_to": "0x5555555555555555555555555555555555555555",
            "facilitator_url": remote.url,
        },
    ]
    try:
        unpaid = client.get(content_path(lesson))
        offer = offer_of(unpaid)
        external = offer.accepts[1]
        payment = payment_for(payer, offer.model_copy(update={"accepts": [external]}))

        response = client.get(
            content_path(lesson), headers={"PAYMENT-SIGNATURE": header_of(payment)}
        )
    finally:
        remote.stop()

    assert [(a.network, a.pay_to, a.amount) for a in offer.accepts] == [
        ("eip155:31337", settings.X402_SITE_PAY_TO, str(PRICE)),
        ("eip155:84532", "0x5555555555555555555555555555555555555555", str(PRICE)),
    ]
    # Version 1 names the networks it knows.
    assert [a["network"] for a in unpaid.json()["accepts"]] == [
        "eip155:31337",
        "base-sepolia",
    ]
    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert response.json()["error"] == REFUSAL_MESSAGE
    assert remote.calls == ["supported", "verify"]
