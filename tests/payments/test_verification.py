"""Verifying a payment: every way a payment is refused, by its reason."""

import time

import pytest
from x402.mechanisms.evm import constants

from payments.models import Balance, Transfer
from payments.services import payment_settle, payment_verify
from payments.verification import PaymentRefused, Reason
from tests.payments.factories import (
    ONE_AIN,
    PRICE,
    account_new,
    payment_signed,
    payment_signed_with,
    requirements_for,
    tampered,
)

pytestmark = pytest.mark.django_db

OTHER_ADDRESS = "0x1111111111111111111111111111111111111111"


def refusal_of(payment, requirements) -> PaymentRefused:
    with pytest.raises(PaymentRefused) as refused:
        payment_verify(payload=payment, requirements=requirements)
    return refused.value


def test_payment_from_the_official_client_verifies(payment, requirements, payer):
    verified = payment_verify(payload=payment, requirements=requirements)

    assert verified.payer == payer.address
    assert verified.authorization.value == PRICE


def test_verification_moves_nothing(payment, requirements, payer, token):
    payment_verify(payload=payment, requirements=requirements)

    assert Transfer.objects.filter(kind=Transfer.Kind.SETTLEMENT).count() == 0
    assert Balance.objects.get(address=payer.address).units == ONE_AIN


def test_expired_authorization_is_refused(payer, requirements):
    now = int(time.time())
    payment = payment_signed_with(payer, requirements, valid_before=now - 60)

    refusal = refusal_of(payment, requirements)

    assert refusal.reason == Reason.EXPIRED
    assert "expired" in refusal.message


def test_authorization_expired_within_the_clock_skew_is_accepted(
    payer, requirements, settings
):
    settings.X402_CLOCK_SKEW_SECONDS = 5
    payment = payment_signed_with(
        payer, requirements, valid_before=int(time.time()) - 2
    )

    assert (
        payment_verify(payload=payment, requirements=requirements).payer
        == payer.address
    )


def test_not_yet_valid_authorization_is_refused(payer, requirements):
    now = int(time.time())
    payment = payment_signed_with(
        payer, requirements, valid_after=now + 60, valid_before=now + 90
    )

    assert refusal_of(payment, requirements).reason == Reason.NOT_YET_VALID


def test_window_longer_than_max_timeout_is_refused(payer, requirements):
    valid_before = int(time.time()) + requirements.max_timeout_seconds + 30
    payment = payment_signed_with(payer, requirements, valid_before=valid_before)

    refusal = refusal_of(payment, requirements)

    assert refusal.reason == Reason.WINDOW_TOO_LONG
    assert "at most 60" in refusal.message


def test_window_starting_later_is_measured_from_its_start(payer, requirements):
    now = int(time.time())
    payment = payment_signed_with(
        payer, requirements, valid_after=now + 3, valid_before=now + 70
    )

    assert refusal_of(payment, requirements).reason == Reason.WINDOW_TOO_LONG


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": str(PRICE + 1)}, Reason.VALUE_MISMATCH),
        ({"pay_to": OTHER_ADDRESS}, Reason.RECIPIENT_MISMATCH),
        ({"asset": OTHER_ADDRESS}, Reason.INVALID_REQUIREMENTS),
        ({"network": "eip155:8453"}, Reason.INVALID_NETWORK),
        ({"scheme": "upto"}, Reason.UNSUPPORTED_SCHEME),
    ],
)
def test_payment_checked_against_another_requirement_is_refused(
    payment, requirements, change, reason
):
    other = requirements.model_copy(update=change)

    assert refusal_of(payment, other).reason == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": str(PRICE - 1)}, Reason.VALUE_MISMATCH),
        ({"pay_to": OTHER_ADDRESS}, Reason.RECIPIENT_MISMATCH),
        ({"asset": OTHER_ADDRESS}, Reason.ASSET_MISMATCH),
        ({"network": "eip155:8453"}, Reason.NETWORK_MISMATCH),
        ({"scheme": "upto"}, Reason.UNSUPPORTED_SCHEME),
    ],
)
def test_payment_that_accepted_other_terms_is_refused(
    payment, requirements, change, reason
):
    quoted_elsewhere = payment.model_copy(
        update={"accepted": payment.accepted.model_copy(update=change)}
    )

    assert refusal_of(quoted_elsewhere, requirements).reason == reason


def test_addresses_in_another_letter_case_are_the_same_address(payment, requirements):
    lowercase = requirements.model_copy(
        update={
            "pay_to": requirements.pay_to.lower(),
            "asset": requirements.asset.lower(),
        }
    )

    assert payment_verify(payload=payment, requirements=lowercase)


def test_authorization_paying_someone_else_is_refused(payment, requirements):
    redirected = tampered(payment, to=OTHER_ADDRESS)

    assert refusal_of(redirected, requirements).reason == Reason.RECIPIENT_MISMATCH


def test_authorization_for_another_value_is_refused(payment, requirements):
    cheaper = tampered(payment, value=str(PRICE - 1))

    assert refusal_of(cheaper, requirements).reason == Reason.VALUE_MISMATCH


def test_signature_by_another_key_is_refused(payer, requirements):
    payment = payment_signed_with(payer, requirements, signer=account_new())

    refusal = refusal_of(payment, requirements)

    assert refusal.reason == Reason.INVALID_SIGNATURE
    assert refusal.payer == payer.address


@pytest.mark.parametrize(
    "field", ["from", "to", "value", "validAfter", "validBefore", "nonce"]
)
def test_each_authorization_field_tampered_after_signing_is_refused(
    payment, requirements, field
):
    """Every other check passes, so only the signature can catch it."""
    authorization = payment.payload["authorization"]
    changed = {
        "from": account_new().address,
        "to": OTHER_ADDRESS,
        "value": str(PRICE * 2),
        "validAfter": "1",
        "validBefore": str(int(authorization["validBefore"]) - 1),
        "nonce": "0x" + "ab" * 32,
    }[field]
    terms = {"to": {"pay_to": changed}, "value": {"amount": changed}}.get(field, {})
    requirements = requirements.model_copy(update=terms)
    payment = tampered(payment, **{field: changed}).model_copy(
        update={"accepted": requirements}
    )

    assert refusal_of(payment, requirements).reason == Reason.INVALID_SIGNATURE


def test_signature_tampered_after_signing_is_refused(payment, requirements):
    signature = payment.payload["signature"]
    flipped = signature[:10] + ("0" if signature[10] != "0" else "1") + signature[11:]
    payment = payment.model_copy(
        update={"payload": {**payment.payload, "signature": flipped}}
    )

    assert refusal_of(payment, requirements).reason == Reason.INVALID_SIGNATURE


@pytest.mark.parametrize(
    "value",
    [
        f"+{PRICE}",
        f" {PRICE}",
        f"{PRICE} ",
        "5_000_000_000_000_000",
        "5e15",
        hex(PRICE),
        "-1",
        f"0{PRICE}",
        "٥",
        "",
        PRICE,
    ],
)
def test_value_not_written_as_a_plain_decimal_is_refused(payment, requirements, value):
    refusal = refusal_of(tampered(payment, value=value), requirements)

    assert refusal.reason == Reason.INVALID_PAYLOAD
    assert "payload.authorization.value" in refusal.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from", "0x1234"),
        ("to", "not an address"),
        ("nonce", "0x1234"),
        ("validBefore", "soon"),
    ],
)
def test_malformed_authorization_field_is_refused(payment, requirements, field, value):
    refusal = refusal_of(tampered(payment, **{field: value}), requirements)

    assert refusal.reason == Reason.INVALID_PAYLOAD
    assert field in refusal.message


def test_wrong_checksum_address_is_refused(payment, requirements, payer):
    address = payer.address
    wrong_case = address[:2] + "".join(
        char.swapcase() if char.isalpha() else char for char in address[2:]
    )
    refusal = refusal_of(tampered(payment, **{"from": wrong_case}), requirements)

    assert refusal.reason == Reason.INVALID_PAYLOAD
    assert "checksum" in refusal.message


def test_contract_wallet_signature_is_refused(payment, requirements):
    longer = {**payment.payload, "signature": payment.payload["signature"] + "00" * 32}

    refusal = refusal_of(payment.model_copy(update={"payload": longer}), requirements)

    assert refusal.reason == Reason.INVALID_PAYLOAD
    assert "65-byte" in refusal.message


def test_insufficient_balance_is_refused(requirements):
    penniless = account_new()
    payment = payment_signed(penniless, requirements)

    refusal = refusal_of(payment, requirements)

    assert refusal.reason == Reason.INSUFFICIENT_FUNDS
    assert refusal.payer == penniless.address


def test_used_nonce_is_refused_at_verification(payment, requirements):
    payment_settle(payload=payment, requirements=requirements)

    assert refusal_of(payment, requirements).reason == Reason.NONCE_USED


def test_unknown_x402_version_is_refused(payment, requirements):
    version_one = payment.model_copy(update={"x402_version": 1})

    assert refusal_of(version_one, requirements).reason == Reason.INVALID_VERSION


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({}, Reason.MISSING_DOMAIN),
        ({"name": "USD Coin", "version": "1"}, Reason.TOKEN_NAME_MISMATCH),
        ({"name": "Lessongraph AIN", "version": "2"}, Reason.TOKEN_VERSION_MISMATCH),
    ],
)
def test_requirement_naming_another_token_domain_is_refused(
    payment, requirements, extra, reason
):
    other = requirements.model_copy(update={"extra": extra})
    payment = payment.model_copy(update={"accepted": other})

    assert refusal_of(payment, other).reason == reason


def test_requirement_paying_nothing_is_refused(payer):
    requirements = requirements_for(account_new().address, amount="0")
    payment = payment_signed_with(payer, requirements)

    assert refusal_of(payment, requirements).reason == Reason.INVALID_REQUIREMENTS


@pytest.mark.parametrize(
    ("reason", "official"),
    [
        (Reason.UNSUPPORTED_SCHEME, constants.ERR_UNSUPPORTED_SCHEME),
        (Reason.MISSING_DOMAIN, constants.ERR_MISSING_EIP712_DOMAIN),
        (Reason.TOKEN_NAME_MISMATCH, constants.ERR_TOKEN_NAME_MISMATCH),
        (Reason.TOKEN_VERSION_MISMATCH, constants.ERR_TOKEN_VERSION_MISMATCH),
        (Reason.NETWORK_MISMATCH, constants.ERR_NETWORK_MISMATCH),
        (Reason.RECIPIENT_MISMATCH, constants.ERR_RECIPIENT_MISMATCH),
        (Reason.VALUE_MISMATCH, constants.ERR_AUTHORIZATION_VALUE_MISMATCH),
        (Reason.NOT_YET_VALID, constants.ERR_VALID_AFTER_FUTURE),
        (Reason.EXPIRED, constants.ERR_VALID_BEFORE_EXPIRED),
        (Reason.INVALID_SIGNATURE, constants.ERR_INVALID_SIGNATURE),
        (Reason.NONCE_USED, constants.ERR_NONCE_ALREADY_USED),
    ],
)
def test_reasons_are_the_official_packages_words(reason, official):
    assert reason == official
