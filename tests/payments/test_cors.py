"""Paying programs in another site's page: the sold resources answer any
origin, without cookies, take the payment headers and show theirs."""

from http import HTTPStatus

import pytest
from django.conf import settings

from payments.gate import EXPOSED_HEADERS
from tests.payments.factories import header_of, offer_of, payment_for

pytestmark = pytest.mark.django_db

ORIGIN = "https://wallet.example"


def test_a_preflight_for_a_paid_request_is_allowed(client, lesson):
    response = client.options(
        f"/api/lessons/{lesson.slug}/content",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "payment-signature, authorization",
        },
    )

    assert response.status_code == HTTPStatus.OK
    assert response["Access-Control-Allow-Origin"] == "*"
    allowed = response["Access-Control-Allow-Headers"]
    assert "payment-signature" in allowed
    assert "authorization" in allowed
    assert "Access-Control-Allow-Credentials" not in response


def test_another_origin_reads_the_offer_and_the_receipt(client, lesson, payer):
    headers = {"Origin": ORIGIN}
    offer = client.get(f"/api/lessons/{lesson.slug}/content", headers=headers)
    paid = client.get(
        f"/api/lessons/{lesson.slug}/content",
        headers={
            **headers,
            "PAYMENT-SIGNATURE": header_of(payment_for(payer, offer_of(offer))),
        },
    )

    for response in (offer, paid):
        assert response["Access-Control-Allow-Origin"] == "*"
        exposed = {
            name.strip()
            for name in response["Access-Control-Expose-Headers"].split(",")
        }
        assert {"PAYMENT-REQUIRED", "PAYMENT-RESPONSE"} <= exposed
    assert paid.status_code == HTTPStatus.OK


def test_pages_and_the_facilitator_stay_same_origin(client):
    for path in ("/", "/facilitator/supported", "/api/lessons/"):
        response = client.get(path, headers={"Origin": ORIGIN})

        assert "Access-Control-Allow-Origin" not in response, path


def test_the_settings_expose_what_the_gate_sends():
    assert set(settings.CORS_EXPOSE_HEADERS) == {
        name.strip() for name in EXPOSED_HEADERS.split(",")
    }
