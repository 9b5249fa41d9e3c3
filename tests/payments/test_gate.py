"""Selling a lesson's body: the offer, the paid answer and receipts, with
the official client's payments against Django's test client."""

import base64
import json
from http import HTTPStatus

import pytest
from django.test import Client
from x402.http.utils import decode_payment_response_header
from x402.schemas import PaymentRequired, PaymentRequiredV1

from payments.models import Purchase, Transfer
from payments.selectors import balance_of
from tests.lessons.factories import LessonFactory
from tests.payments.factories import (
    ONE_AIN,
    PRICE,
    header_of,
    offer_of,
    payment_for,
    version_1_of,
)

pytestmark = pytest.mark.django_db

EXPOSED = {"PAYMENT-REQUIRED", "PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE"}


def content_url(lesson) -> str:
    return f"/api/lessons/{lesson.slug}/content"


def get(client, lesson, **headers):
    return client.get(content_url(lesson), headers=headers)


def paid(client, lesson, account, **headers):
    offer = offer_of(get(client, lesson))
    return get(
        client,
        lesson,
        **{"PAYMENT-SIGNATURE": header_of(payment_for(account, offer))},
        **headers,
    )


def exposed(response) -> set[str]:
    return {
        name.strip().upper()
        for name in response["Access-Control-Expose-Headers"].split(",")
    }


def test_free_lesson_is_served_without_payment(client):
    lesson = LessonFactory(body="Free *words*.\n")

    response = get(client, lesson)

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "slug": lesson.slug,
        "title": lesson.title,
        "content_sha256": lesson.body_sha256,
        "markdown": "Free *words*.\n",
        "html": lesson.body_html,
    }
    assert "PAYMENT-REQUIRED" not in response


def test_free_lesson_with_a_payment_charges_nothing(client, lesson, payer, token):
    offer = offer_of(get(client, lesson))
    payment = header_of(payment_for(payer, offer))
    free = LessonFactory()

    response = get(client, free, **{"PAYMENT-SIGNATURE": payment})

    assert response.status_code == HTTPStatus.OK
    assert "PAYMENT-RESPONSE" not in response
    assert balance_of(token=token, address=payer.address) == ONE_AIN


def test_unknown_lesson_is_404_json(client):
    response = client.get("/api/lessons/no-such-lesson/content")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert "no-such-lesson" in response.json()["detail"]


def test_unpaid_request_gets_402_for_both_generations_of_clients(client, lesson):
    response = get(client, lesson)

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert response["Cache-Control"] == "no-store"
    assert exposed(response) == EXPOSED
    header = json.loads(base64.b64decode(response["PAYMENT-REQUIRED"], validate=True))
    assert header["x402Version"] == 2
    assert set(header) >= {"resource", "accepts", "error"}
    assert PaymentRequired.model_validate(header)
    body = response.json()
    assert body["x402Version"] == 1
    assert body["error"] == header["error"]
    assert PaymentRequiredV1.model_validate(body).accepts


def test_offer_asks_the_price_in_the_smallest_unit_for_the_site_wallet(
    client, lesson, token, site_wallet, settings
):
    settings.X402_MAX_TIMEOUT_SECONDS = 120

    offer = offer_of(get(client, lesson))

    [accepted] = offer.accepts
    assert (accepted.scheme, accepted.network, accepted.asset) == (
        "exact",
        "eip155:31337",
        token.address,
    )
    assert accepted.amount == "5000000000000000"
    assert accepted.pay_to == site_wallet
    assert accepted.max_timeout_seconds == 120
    assert accepted.extra == {"name": "Lessongraph AIN", "version": "1"}
    assert offer.resource is not None
    assert offer.resource.url == f"http://testserver{content_url(lesson)}"
    assert lesson.title in offer.resource.description
    assert offer.resource.mime_type == "application/json"


def test_version_1_body_carries_the_same_offer(client, lesson):
    response = get(client, lesson)

    [accepted] = response.json()["accepts"]
    [offered] = offer_of(response).accepts
    assert accepted["maxAmountRequired"] == offered.amount
    assert accepted["payTo"] == offered.pay_to
    assert accepted["asset"] == offered.asset
    # Version 1 has no name for a local chain; the CAIP-2 id stands in.
    assert accepted["network"] == "eip155:31337"
    assert accepted["resource"].endswith(content_url(lesson))


def test_head_is_gated_like_get(client, lesson):
    response = client.head(content_url(lesson))

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert response.content == b""
    assert offer_of(response).accepts[0].amount == str(PRICE)


def test_head_with_a_payment_charges_nothing(client, lesson, payer, token):
    payment = header_of(payment_for(payer, offer_of(get(client, lesson))))

    response = client.head(content_url(lesson), headers={"PAYMENT-SIGNATURE": payment})

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert balance_of(token=token, address=payer.address) == ONE_AIN


def test_paid_request_gets_the_body_and_its_receipt(
    client, lesson, payer, token, site_wallet
):
    response = paid(client, lesson, payer)

    assert response.status_code == HTTPStatus.OK
    assert response.json()["markdown"] == "## Secret\n\nThe paid part.\n"
    assert response["Cache-Control"] == "private"
    assert exposed(response) == EXPOSED
    receipt = decode_payment_response_header(response["PAYMENT-RESPONSE"])
    assert receipt.success
    assert receipt.payer == payer.address
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE
    assert balance_of(token=token, address=site_wallet) == PRICE
    purchase = Purchase.objects.get()
    assert (purchase.transaction, purchase.lesson, purchase.payer) == (
        receipt.transaction,
        lesson,
        payer.address,
    )
    assert (purchase.payee, purchase.units, purchase.asset, purchase.network) == (
        site_wallet,
        PRICE,
        token.address,
        token.network,
    )
    assert purchase.account is None


@pytest.mark.parametrize(
    ("accept", "content_type", "expected"),
    [
        ("text/markdown", "text/markdown; charset=utf-8", "## Secret"),
        ("text/html", "text/html; charset=utf-8", "<h2>Secret</h2>"),
        ("application/json", "application/json; charset=utf-8", '"markdown"'),
        ("*/*", "application/json; charset=utf-8", '"markdown"'),
    ],
)
def test_body_is_served_as_accept_asks(
    client, lesson, payer, accept, content_type, expected
):
    response = paid(client, lesson, payer, Accept=accept)

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == content_type
    assert expected in response.content.decode()
    # Origin too: django-cors-headers adds it on the paths it serves.
    assert [part.strip().lower() for part in response["Vary"].split(",")] == [
        "accept",
        "origin",
    ]


def test_offer_names_the_media_type_asked_for(client, lesson):
    offer = offer_of(get(client, lesson, Accept="text/markdown"))

    assert offer.resource is not None
    assert offer.resource.mime_type == "text/markdown"


def test_html_body_may_run_nothing(client, lesson, payer):
    response = paid(client, lesson, payer, Accept="text/html")

    assert "default-src 'none'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("method", ["post", "put", "delete"])
@pytest.mark.parametrize(
    "path",
    ["content", "path/bundle", "receipt"],
)
def test_a_method_other_than_get_is_not_allowed(lesson, method, path):
    # Without a CSRF token, as a program sends it: the answer names the
    # methods there are, not a CSRF failure page.
    strict = Client(enforce_csrf_checks=True)
    url = (
        "/api/purchases/0x00"
        if path == "receipt"
        else f"/api/lessons/{lesson.slug}/{path}"
    )

    response = getattr(strict, method)(url)

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert "GET" in response["Allow"]


def test_unacceptable_media_type_is_406_before_any_payment(
    client, lesson, payer, token
):
    offer = offer_of(get(client, lesson))
    payment = header_of(payment_for(payer, offer))

    response = get(client, lesson, Accept="image/png", **{"PAYMENT-SIGNATURE": payment})

    assert response.status_code == HTTPStatus.NOT_ACCEPTABLE
    assert balance_of(token=token, address=payer.address) == ONE_AIN


def test_replayed_payment_is_refused(client, lesson, payer, token):
    offer = offer_of(get(client, lesson))
    payment = header_of(payment_for(payer, offer))
    get(client, lesson, **{"PAYMENT-SIGNATURE": payment})

    replay = get(client, lesson, **{"PAYMENT-SIGNATURE": payment})

    assert replay.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert "markdown" not in replay.json()
    assert replay.json()["reason"] == "invalid_exact_evm_nonce_already_used"
    assert "already settled" in offer_of(replay).error
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE
    assert Purchase.objects.count() == 1


def test_version_1_payment_in_x_payment_is_accepted(client, lesson, payer):
    offer = offer_of(get(client, lesson))
    payment = version_1_of(payment_for(payer, offer))

    response = get(client, lesson, **{"X-PAYMENT": header_of(payment)})

    assert response.status_code == HTTPStatus.OK
    assert response["X-PAYMENT-RESPONSE"] == response["PAYMENT-RESPONSE"]
    assert decode_payment_response_header(response["X-PAYMENT-RESPONSE"]).success
    assert Purchase.objects.count() == 1


def test_version_1_payment_in_payment_signature_is_accepted(client, lesson, payer):
    offer = offer_of(get(client, lesson))
    payment = version_1_of(payment_for(payer, offer))

    response = get(client, lesson, **{"PAYMENT-SIGNATURE": header_of(payment)})

    assert response.status_code == HTTPStatus.OK
    assert "X-PAYMENT-RESPONSE" not in response


def test_payment_is_bound_to_the_path_not_the_host_name(client, lesson, payer):
    offer = offer_of(get(client, lesson))
    assert offer.resource is not None
    payment = payment_for(payer, offer)
    elsewhere = offer.resource.model_copy(
        update={"url": offer.resource.url.replace("testserver", "127.0.0.1:8000")}
    )

    response = get(
        client,
        lesson,
        **{
            "PAYMENT-SIGNATURE": header_of(
                payment.model_copy(update={"resource": elsewhere})
            )
        },
    )

    assert response.status_code == HTTPStatus.OK


def test_version_2_payment_in_x_payment_is_accepted(client, lesson, payer):
    offer = offer_of(get(client, lesson))
    payment = header_of(payment_for(payer, offer))

    response = get(client, lesson, **{"X-PAYMENT": payment})

    assert response.status_code == HTTPStatus.OK
    assert "X-PAYMENT-RESPONSE" in response


def test_lesson_priced_in_an_asset_no_offer_takes_is_503(client):
    lesson = LessonFactory(priced=True, asset="USDC")

    response = get(client, lesson)

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert "USDC" in response.json()["detail"]
    assert not Transfer.objects.filter(kind=Transfer.Kind.SETTLEMENT).exists()


def test_receipt_is_served_by_transaction_id(client, lesson, payer, token, site_wallet):
    transaction = decode_payment_response_header(
        paid(client, lesson, payer)["PAYMENT-RESPONSE"]
    ).transaction

    response = client.get(f"/api/purchases/{transaction}")

    assert response.status_code == HTTPStatus.OK
    receipt = response.json()
    assert receipt["transaction"] == transaction
    assert receipt["lesson"]["slug"] == lesson.slug
    assert (receipt["amount"], receipt["price"]) == (str(PRICE), "0.005 AIN")
    assert (receipt["asset"], receipt["network"]) == (token.address, token.network)
    assert receipt["payer"] == payer.address
    assert receipt["payee"] == site_wallet
    assert receipt["created"]
    assert "no-store" in response["Cache-Control"]


def test_unknown_receipt_is_404_json(client):
    response = client.get("/api/purchases/0x" + "ab" * 32)

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert "detail" in response.json()
