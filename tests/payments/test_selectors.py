"""Reads of the ledger that payments depend on."""

import pytest

from payments.selectors import payer_position
from payments.services import payment_settle, wallet_fund
from tests.payments.factories import ONE_AIN, PRICE, account_new

pytestmark = pytest.mark.django_db


def test_a_payer_never_seen_holds_nothing_and_spent_nothing(token):
    assert payer_position(token=token, payer=account_new().address, nonce="0x01") == (
        0,
        False,
    )


def test_the_position_reads_every_digit_of_the_balance(token):
    payer = account_new().address
    wallet_fund(address=payer, amount=123 * ONE_AIN)

    assert payer_position(token=token, payer=payer, nonce="0x01") == (
        123 * ONE_AIN,
        False,
    )


def test_a_settled_nonce_is_spent_and_the_balance_moved(
    payer, payment, requirements, token
):
    payment_settle(payload=payment, requirements=requirements)
    nonce = payment.payload["authorization"]["nonce"]

    assert payer_position(token=token, payer=payer.address, nonce=nonce) == (
        ONE_AIN - PRICE,
        True,
    )
    assert (
        payer_position(token=token, payer=payer.address, nonce="0x" + "00" * 32)[1]
        is False
    )
