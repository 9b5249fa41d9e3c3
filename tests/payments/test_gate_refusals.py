"""Bad payments and faults on the way to a lesson's body: each is refused
with a reason, and none gets the body, charges the payer or answers 500."""

import base64
import json
import time
from http import HTTPStatus

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from x402.http.utils import decode_payment_response_header

from payments.gate import Resource, lesson_sell
from payments.models import Purchase
from payments.selectors import balance_of
from payments.services import payment_settle
from tests.lessons.factories import LessonFactory
from tests.payments.factories import (
    ONE_AIN,
    PRICE,
    account_new,
    header_of,
    offer_of,
    payment_for,
    payment_signed,
    payment_signed_with,
    requirements_for,
    tampered,
    version_1_of,
)

pytestmark = pytest.mark.django_db

OTHER_ADDRESS = "0x1111111111111111111111111111111111111111"


def content_url(lesson) -> str:
    return f"/api/lessons/{lesson.slug}/content"


def offered(client, lesson):
    return offer_of(client.get(content_url(lesson)))


def send(client, lesson, header: str, name: str = "PAYMENT-SIGNATURE"):
    return client.get(content_url(lesson), headers={name: header})


def refusal(response) -> tuple[str, str]:
    """The reason and message of a refusal that delivered nothing."""
    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED, response.content
    body = response.json()
    assert "markdown" not in body
    assert body["x402Version"] == 1
    offer = offer_of(response)
    assert offer.error == body["error"]
    assert offer.accepts
    return body["reason"], body["error"]


@pytest.fixture
def nothing_charged(payer, token):
    yield
    assert balance_of(token=token, address=payer.address) == ONE_AIN
    assert not Purchase.objects.exists()


def signed_with(client, lesson, payer, **changes):
    offer = offered(client, lesson)
    return payment_signed_with(
        payer, offer.accepts[0], resource=offer.resource, **changes
    )


def test_expired_payment_is_refused(client, lesson, payer, nothing_charged):
    payment = signed_with(client, lesson, payer, valid_before=int(time.time()) - 60)

    reason, message = refusal(send(client, lesson, header_of(payment)))

    assert reason == "invalid_exact_evm_payload_authorization_valid_before"
    assert "expired" in message


def test_not_yet_valid_payment_is_refused(client, lesson, payer, nothing_charged):
    now = int(time.time())
    payment = signed_with(
        client, lesson, payer, valid_after=now + 60, valid_before=now + 120
    )

    reason, _ = refusal(send(client, lesson, header_of(payment)))

    assert reason == "invalid_exact_evm_payload_authorization_valid_after"


def test_payment_signed_by_another_key_is_refused(
    client, lesson, payer, nothing_charged
):
    payment = signed_with(client, lesson, payer, signer=account_new())

    reason, _ = refusal(send(client, lesson, header_of(payment)))

    assert reason == "invalid_exact_evm_payload_signature"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "value",
            str(PRICE * 2),
            "invalid_exact_evm_payload_authorization_value_mismatch",
        ),
        ("to", OTHER_ADDRESS, "invalid_exact_evm_payload_recipient_mismatch"),
        # Computed when the test runs: a time taken at collection could be
        # past by then, and the refusal would be for the window instead.
        (
            "validBefore",
            lambda: str(int(time.time()) + 60),
            "invalid_exact_evm_payload_signature",
        ),
        ("nonce", "0x" + "00" * 32, "invalid_exact_evm_payload_signature"),
    ],
)
def test_field_tampered_after_signing_is_refused(
    client, lesson, payer, nothing_charged, field, value, expected
):
    payment = payment_for(payer, offered(client, lesson))
    if callable(value):
        value = value()

    reason, _ = refusal(
        send(client, lesson, header_of(tampered(payment, **{field: value})))
    )

    assert reason == expected


def test_payment_beyond_the_balance_is_refused(client, lesson):
    penniless = account_new()
    payment = payment_for(penniless, offered(client, lesson))

    reason, message = refusal(send(client, lesson, header_of(payment)))

    assert reason == "insufficient_funds"
    assert "holds 0 AIN" in message
    assert not Purchase.objects.exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"amount": str(PRICE // 2)},
            "invalid_exact_evm_payload_authorization_value_mismatch",
        ),
        ({"pay_to": OTHER_ADDRESS}, "invalid_exact_evm_payload_recipient_mismatch"),
        ({"asset": OTHER_ADDRESS}, "invalid_exact_evm_payload_asset_mismatch"),
        ({"network": "eip155:8453"}, "network_mismatch"),
        ({"scheme": "upto"}, "unsupported_scheme"),
        ({"max_timeout_seconds": 86400}, "invalid_payload"),
        (
            {"extra": {"name": "Other token", "version": "1"}},
            "invalid_exact_evm_token_name_mismatch",
        ),
    ],
)
def test_payment_for_other_terms_is_refused(
    client, lesson, payer, nothing_charged, change, expected
):
    """The payer accepted terms other than the offer's."""
    offer = offered(client, lesson)
    signed = payment_for(payer, offer)
    payment = signed.model_copy(
        update={"accepted": offer.accepts[0].model_copy(update=change)}
    )

    reason, _ = refusal(send(client, lesson, header_of(payment)))

    assert reason == expected


@pytest.mark.parametrize(
    ("signed_for", "expected"),
    [
        (
            {"amount": str(PRICE // 2)},
            "invalid_exact_evm_payload_authorization_value_mismatch",
        ),
        ({"pay_to": OTHER_ADDRESS}, "invalid_exact_evm_payload_recipient_mismatch"),
    ],
)
def test_payment_claiming_the_offer_but_signed_for_less_is_refused(
    client, lesson, payer, nothing_charged, signed_for, expected
):
    """The payer signed for other terms and claims the offer's."""
    offer = offered(client, lesson)
    signed = payment_for(
        payer,
        offer.model_copy(
            update={"accepts": [offer.accepts[0].model_copy(update=signed_for)]}
        ),
    )
    payment = signed.model_copy(update={"accepted": offer.accepts[0]})

    reason, _ = refusal(send(client, lesson, header_of(payment)))

    assert reason == expected


def test_payment_for_another_lesson_is_refused(client, lesson, payer, nothing_charged):
    other = LessonFactory(priced=True)
    payment = payment_for(payer, offered(client, other))
    assert offered(client, other).accepts == offered(client, lesson).accepts

    reason, message = refusal(send(client, lesson, header_of(payment)))

    assert reason == "resource_mismatch"
    assert other.slug in message


def test_payment_naming_no_resource_is_refused(client, lesson, payer, nothing_charged):
    payment = payment_for(payer, offered(client, lesson))

    reason, _ = refusal(
        send(client, lesson, header_of(payment.model_copy(update={"resource": None})))
    )

    assert reason == "resource_mismatch"


def test_version_1_payment_on_another_network_is_refused(
    client, lesson, payer, nothing_charged
):
    payment = version_1_of(payment_for(payer, offered(client, lesson)))

    reason, _ = refusal(
        send(
            client,
            lesson,
            header_of(payment.model_copy(update={"network": "base-sepolia"})),
            name="X-PAYMENT",
        )
    )

    assert reason == "network_mismatch"


def encoded(document) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def valid_document(client, lesson, payer) -> dict:
    payment = payment_for(payer, offered(client, lesson))
    return payment.model_dump(mode="json", by_alias=True, exclude_none=True)


@pytest.mark.parametrize("version", [3, 0, -1, "2", True, None, 2.0])
def test_unknown_x402_version_is_refused(
    client, lesson, payer, nothing_charged, version
):
    document = valid_document(client, lesson, payer)
    document["x402Version"] = version

    reason, message = refusal(send(client, lesson, encoded(document)))

    assert reason == "invalid_x402_version"
    assert "versions 1 and 2" in message


def test_missing_x402_version_is_refused(client, lesson, payer, nothing_charged):
    document = valid_document(client, lesson, payer)
    del document["x402Version"]

    reason, _ = refusal(send(client, lesson, encoded(document)))

    assert reason == "invalid_x402_version"


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("not base64 at all!", "not standard base64"),
        ("eyJ4NDAyVmVyc2lvbiI6Mn0", "not standard base64"),  # padding missing
        (base64.b64encode(b"\xff\xfe\x00").decode(), "UTF-8"),
        (base64.b64encode(b"{not json").decode(), "not JSON"),
        (base64.b64encode(b"[1, 2]").decode(), "JSON object"),
        (base64.b64encode(b'"2"').decode(), "JSON object"),
        ("", "not JSON"),
        (encoded({"x402Version": 2, "payload": {}}), "accepted"),
        (encoded({"x402Version": 2, "accepted": {}, "payload": {}}), "accepted"),
        (encoded({"x402Version": 1, "scheme": "exact"}), "version-1"),
    ],
)
def test_unreadable_payment_header_is_refused_with_a_reason(
    client, lesson, payer, nothing_charged, header, problem
):
    reason, message = refusal(send(client, lesson, header))

    assert reason == "invalid_payload"
    assert problem in message


def test_oversized_payment_header_is_refused(
    client, lesson, payer, nothing_charged, settings
):
    document = valid_document(client, lesson, payer)
    document["padding"] = "x" * settings.X402_PAYMENT_HEADER_MAX_BYTES

    reason, message = refusal(send(client, lesson, encoded(document)))

    assert reason == "invalid_payload"
    assert "at most 16384" in message


def nested(levels: int) -> object:
    value: object = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("part", ["accepted", "payload"])
@pytest.mark.parametrize("name", ["PAYMENT-SIGNATURE", "X-PAYMENT"])
def test_deeply_nested_payment_is_refused(
    client, lesson, payer, nothing_charged, part, name
):
    # A few kilobytes hold a few hundred levels, which json.loads reads and
    # pydantic then refuses to write out again: this was a 500.
    document = valid_document(client, lesson, payer)
    document[part]["extra"] = {"deep": nested(400)}

    reason, message = refusal(send(client, lesson, encoded(document), name))

    assert reason == "invalid_payload"
    assert "levels deep" in message


def test_payment_with_a_little_nesting_in_extra_is_paid(client, lesson, payer):
    document = valid_document(client, lesson, payer)
    document["accepted"]["extra"]["terms"] = {"deep": nested(20)}

    response = send(client, lesson, encoded(document))

    assert response.status_code == HTTPStatus.OK
    assert "The paid part." in response.json()["markdown"]


@pytest.mark.parametrize(
    ("part", "field"),
    [("resource", "url"), ("resource", "description"), ("accepted", "scheme")],
)
def test_payment_holding_a_lone_surrogate_is_refused(
    client, lesson, payer, nothing_charged, part, field
):
    # JSON may escape half of a UTF-16 pair ("\ud800"), which no UTF-8 text
    # holds: echoed into a refusal, it could not be written out.
    document = valid_document(client, lesson, payer)
    document[part][field] = "\ud800" + document[part][field]

    reason, message = refusal(send(client, lesson, encoded(document)))

    assert reason == "invalid_payload"
    assert "Unicode" in message


def test_payment_in_both_headers_is_refused(client, lesson, payer, nothing_charged):
    payment = header_of(payment_for(payer, offered(client, lesson)))

    response = client.get(
        content_url(lesson),
        headers={"PAYMENT-SIGNATURE": payment, "X-PAYMENT": payment},
    )

    assert refusal(response)[0] == "ambiguous_payment"


def sell(lesson, payment_header: str, render):
    request = RequestFactory().get(
        content_url(lesson), headers={"PAYMENT-SIGNATURE": payment_header}
    )
    resource = Resource(
        url=request.build_absolute_uri(), description="", mime_type="text/markdown"
    )
    return lesson_sell(request, lesson=lesson, resource=resource, render=render)


def test_nothing_is_settled_when_the_view_fails(client, lesson, payer, nothing_charged):
    payment = header_of(payment_for(payer, offered(client, lesson)))

    response = sell(lesson, payment, lambda: HttpResponse("broken", status=500))

    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "PAYMENT-RESPONSE" not in response


def test_body_is_held_back_when_settlement_fails(client, lesson, payer, token):
    """Verified, rendered, then refused at settlement: the payer's balance
    was spent meanwhile."""
    payment = header_of(payment_for(payer, offered(client, lesson)))
    elsewhere = requirements_for(account_new().address, amount=str(ONE_AIN - 1))

    def render_while_spending() -> HttpResponse:
        payment_settle(payload=payment_signed(payer, elsewhere), requirements=elsewhere)
        return HttpResponse("the paid part")

    response = sell(lesson, payment, render_while_spending)

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert b"the paid part" not in response.content
    settlement = decode_payment_response_header(response["PAYMENT-RESPONSE"])
    assert (settlement.success, settlement.error_reason) == (
        False,
        "insufficient_funds",
    )
    assert json.loads(response.content)["reason"] == "insufficient_funds"
    assert balance_of(token=token, address=payer.address) == 1
    assert not Purchase.objects.exists()
