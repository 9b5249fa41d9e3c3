"""The facilitator's HTTP API: shapes of the official package, refusals as
answers, unreadable requests as 400s and never a 500."""

import json
from http import HTTPStatus

import pytest
from django.test import Client
from x402.schemas import SettleResponse, SupportedResponse, VerifyResponse

from payments.api.views import MAX_BODY_BYTES
from tests.payments.factories import PRICE, account_new, payment_signed

pytestmark = pytest.mark.django_db

VERIFY = "/facilitator/verify"
SETTLE = "/facilitator/settle"
SUPPORTED = "/facilitator/supported"


def request_body(payment, requirements, **changes) -> dict:
    body = {
        "x402Version": 2,
        "paymentPayload": payment.model_dump(by_alias=True, exclude_none=True),
        "paymentRequirements": requirements.model_dump(
            by_alias=True, exclude_none=True
        ),
    }
    body.update(changes)
    return body


def post(client, path, body):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json")


def test_supported_lists_exact_on_our_network(client, token):
    response = client.get(SUPPORTED)

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "kinds": [{"x402Version": 2, "scheme": "exact", "network": token.network}],
        "extensions": [],
        "signers": {},
    }
    assert SupportedResponse.model_validate(response.json())


def test_verify_answers_valid_with_the_payer(client, payment, requirements, payer):
    response = post(client, VERIFY, request_body(payment, requirements))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"isValid": True, "payer": payer.address}


def test_verify_refusal_is_an_answer_with_reason_and_message(client, requirements):
    penniless = account_new()
    payment = payment_signed(penniless, requirements)

    response = post(client, VERIFY, request_body(payment, requirements))

    assert response.status_code == HTTPStatus.OK
    answer = VerifyResponse.model_validate(response.json())
    assert not answer.is_valid
    assert answer.invalid_reason == "insufficient_funds"
    assert "holds 0 AIN" in (answer.invalid_message or "")
    assert answer.payer == penniless.address


def test_settle_answers_the_transaction(client, payment, requirements, payer, token):
    response = post(client, SETTLE, request_body(payment, requirements))

    assert response.status_code == HTTPStatus.OK
    answer = SettleResponse.model_validate(response.json())
    assert answer.success
    assert answer.payer == payer.address
    assert answer.network == token.network
    assert answer.amount == str(PRICE)
    assert answer.transaction.startswith("0x")
    assert len(answer.transaction) == 66


def test_settling_twice_answers_a_replay(client, payment, requirements, token):
    post(client, SETTLE, request_body(payment, requirements))

    response = post(client, SETTLE, request_body(payment, requirements))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "success": False,
        "errorReason": "invalid_exact_evm_nonce_already_used",
        "errorMessage": response.json()["errorMessage"],
        "payer": payment.payload["authorization"]["from"],
        "transaction": "",
        "network": token.network,
    }


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{",
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe\xfa",
        b"[" * 30_000 + b"]" * 30_000,
    ],
    ids=["words", "truncated", "array", "string", "not utf-8", "deeply nested"],
)
@pytest.mark.parametrize("path", [VERIFY, SETTLE])
def test_unreadable_body_is_a_bad_request(client, path, body):
    response = post(client, path, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    reason = "invalidReason" if path == VERIFY else "errorReason"
    assert response.json()[reason] == "invalid_payload"


@pytest.mark.parametrize(
    ("change", "reason", "where"),
    [
        (
            {"paymentRequirements": None},
            "invalid_payment_requirements",
            "paymentRequirements",
        ),
        (
            {"paymentRequirements": {"scheme": "exact"}},
            "invalid_payment_requirements",
            "network",
        ),
        (
            {"paymentPayload": {"x402Version": 2, "payload": {}}},
            "invalid_payload",
            "accepted",
        ),
        ({"paymentPayload": "a string"}, "invalid_payload", "paymentPayload"),
    ],
)
def test_wrong_shape_is_a_bad_request(
    client, payment, requirements, change, reason, where
):
    response = post(client, VERIFY, request_body(payment, requirements, **change))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["invalidReason"] == reason
    assert where in response.json()["invalidMessage"]


def test_amount_as_a_number_is_a_bad_request(client, payment, requirements):
    body = request_body(payment, requirements)
    body["paymentRequirements"]["amount"] = PRICE

    response = post(client, VERIFY, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["invalidReason"] == "invalid_payment_requirements"


def test_oversized_body_is_a_bad_request(client, payment, requirements):
    body = request_body(payment, requirements)
    body["paymentPayload"]["resource"] = {
        "url": "http://x/",
        "description": "x" * MAX_BODY_BYTES,
    }

    response = post(client, SETTLE, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "larger than" in response.json()["errorMessage"]


@pytest.mark.parametrize("version", [1, 3, "2", 2.0, True, None])
def test_unknown_x402_version_is_a_bad_request(client, payment, requirements, version):
    response = post(
        client, VERIFY, request_body(payment, requirements, x402Version=version)
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["invalidReason"] == "invalid_x402_version"


def test_missing_x402_version_is_a_bad_request(client, payment, requirements):
    body = request_body(payment, requirements)
    del body["x402Version"]

    response = post(client, VERIFY, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["invalidMessage"].startswith("x402Version is missing")


def test_payload_of_another_version_is_a_bad_request(client, payment, requirements):
    body = request_body(payment, requirements)
    body["paymentPayload"]["x402Version"] = 1

    response = post(client, SETTLE, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["errorReason"] == "invalid_x402_version"


def test_endpoints_need_no_csrf_token_and_set_no_cookie(payment, requirements):
    strict = Client(enforce_csrf_checks=True)

    response = post(strict, VERIFY, request_body(payment, requirements))

    assert response.status_code == HTTPStatus.OK
    assert not response.cookies


@pytest.mark.parametrize(
    ("method", "path"), [("get", VERIFY), ("get", SETTLE), ("post", SUPPORTED)]
)
def test_wrong_method_is_not_allowed(method, path):
    strict = Client(enforce_csrf_checks=True)

    assert getattr(strict, method)(path).status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_a_caller_cannot_stretch_the_window_past_what_the_site_offers(
    client, payer, requirements, settings
):
    import time

    from tests.payments.factories import payment_signed_with

    long_requirements = requirements.model_copy(update={"max_timeout_seconds": 10**7})
    payment = payment_signed_with(
        payer, long_requirements, valid_before=int(time.time()) + 10**6
    )

    response = post(client, SETTLE, request_body(payment, long_requirements))

    assert response.json()["success"] is False
    assert (
        response.json()["errorReason"]
        == "invalid_exact_evm_payload_authorization_window"
    )


def test_an_authorization_that_is_never_valid_is_refused(client, payer, requirements):
    import time

    from tests.payments.factories import payment_signed_with

    now = int(time.time())
    payment = payment_signed_with(
        payer, requirements, valid_after=now + 3, valid_before=now - 3
    )

    response = post(client, VERIFY, request_body(payment, requirements))

    assert response.json()["isValid"] is False
    assert "never valid" in response.json()["invalidMessage"]
