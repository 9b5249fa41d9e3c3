"""Settling payments on the ledger: the value moves once, or not at all."""

import re
import threading

import pytest
from django.db import IntegrityError, connection

from config.errors import ApplicationError
from payments.models import MINT_ADDRESS, Balance, Transfer
from payments.selectors import balance_of
from payments.services import (
    database_holds_exactly,
    payment_settle,
    payment_verify,
    wallet_fund,
)
from payments.verification import PaymentRefused, Reason
from tests.payments.factories import (
    ONE_AIN,
    PRICE,
    account_new,
    payment_signed,
    payment_signed_with,
    requirements_for,
)


@pytest.mark.django_db
def test_verified_payment_settles_and_moves_the_balance(
    payment, requirements, payer, payee, token
):
    payment_verify(payload=payment, requirements=requirements)

    transfer = payment_settle(payload=payment, requirements=requirements)

    assert re.fullmatch(r"0x[0-9a-f]{64}", transfer.transaction)
    assert transfer.kind == Transfer.Kind.SETTLEMENT
    assert (transfer.payer, transfer.payee, transfer.units) == (
        payer.address,
        payee,
        PRICE,
    )
    assert transfer.nonce == payment.payload["authorization"]["nonce"].lower()
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE
    assert balance_of(token=token, address=payee) == PRICE


@pytest.mark.django_db
def test_replayed_payment_is_refused(payment, requirements, payer, payee, token):
    payment_settle(payload=payment, requirements=requirements)

    with pytest.raises(PaymentRefused) as refused:
        payment_settle(payload=payment, requirements=requirements)

    assert refused.value.reason == Reason.NONCE_USED
    assert Transfer.objects.filter(kind=Transfer.Kind.SETTLEMENT).count() == 1
    assert balance_of(token=token, address=payee) == PRICE


@pytest.mark.django_db
def test_second_payment_beyond_the_balance_is_refused_at_settlement(token):
    payer = account_new()
    wallet_fund(address=payer.address, amount=PRICE)
    requirements = requirements_for(account_new().address)
    first, second = (
        payment_signed(payer, requirements),
        payment_signed(payer, requirements),
    )
    payment_verify(payload=second, requirements=requirements)
    payment_settle(payload=first, requirements=requirements)

    with pytest.raises(PaymentRefused) as refused:
        payment_settle(payload=second, requirements=requirements)

    assert refused.value.reason == Reason.INSUFFICIENT_FUNDS
    assert balance_of(token=token, address=payer.address) == 0


@pytest.mark.django_db
def test_payment_to_oneself_settles_and_moves_nothing(payer, token):
    requirements = requirements_for(payer.address)

    transfer = payment_settle(
        payload=payment_signed(payer, requirements), requirements=requirements
    )

    assert (transfer.payer, transfer.payee) == (payer.address, payer.address)
    assert balance_of(token=token, address=payer.address) == ONE_AIN
    assert Balance.objects.filter(address=payer.address).count() == 1


@pytest.mark.django_db
def test_refused_settlement_writes_nothing(payer, requirements, token):
    forged = payment_signed_with(payer, requirements, signer=account_new())
    before = list(Transfer.objects.values_list("pk", flat=True))

    with pytest.raises(PaymentRefused):
        payment_settle(payload=forged, requirements=requirements)

    assert list(Transfer.objects.values_list("pk", flat=True)) == before
    assert balance_of(token=token, address=payer.address) == ONE_AIN
    assert not Balance.objects.filter(address=requirements.pay_to).exists()


def settle_together(payments, requirements) -> list[Transfer | Reason]:
    """Settle the payments in threads released at the same moment; each
    outcome is a Transfer or a refusal's reason."""
    start = threading.Barrier(len(payments))
    outcomes: list[Transfer | Reason] = []

    def settle(payment) -> None:
        try:
            start.wait()
            outcomes.append(payment_settle(payload=payment, requirements=requirements))
        except PaymentRefused as refusal:
            outcomes.append(refusal.reason)
        finally:
            connection.close()

    threads = [threading.Thread(target=settle, args=(payment,)) for payment in payments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_parallel_settlements_of_one_payment_settle_once(
    payment, requirements, payer, token
):
    attempts = 4

    outcomes = settle_together([payment] * attempts, requirements)

    assert sum(isinstance(outcome, Transfer) for outcome in outcomes) == 1
    assert outcomes.count(Reason.NONCE_USED) == attempts - 1
    assert Transfer.objects.filter(kind=Transfer.Kind.SETTLEMENT).count() == 1
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE
    assert balance_of(token=token, address=requirements.pay_to) == PRICE


@pytest.mark.django_db(transaction=True)
def test_parallel_settlements_to_a_new_payee_never_deadlock(payer, token):
    # The first payment to a payee opens its balance. Settlements that found
    # it missing used to lock the payer's balance first and the payee's
    # after, while those that found it locked both in address order: two of
    # them could wait for each other until the database gave up on one.
    attempts, rounds = 6, 8

    for _ in range(rounds):
        requirements = requirements_for(account_new().address)
        payment = payment_signed(payer, requirements)

        outcomes = settle_together([payment] * attempts, requirements)

        assert len(outcomes) == attempts, "a settlement failed with an error"
        assert sum(isinstance(outcome, Transfer) for outcome in outcomes) == 1
        assert outcomes.count(Reason.NONCE_USED) == attempts - 1
    assert balance_of(token=token, address=payer.address) == ONE_AIN - rounds * PRICE


@pytest.mark.django_db(transaction=True)
def test_parallel_payments_beyond_the_balance_settle_once(token):
    payer, payee = account_new(), account_new()
    wallet_fund(address=payer.address, amount=PRICE)
    # Both balances exist already, so that only their row locks order the
    # settlements (opening a balance would serialise them by itself).
    wallet_fund(address=payee.address, amount=PRICE)
    requirements = requirements_for(payee.address)
    payments = [payment_signed(payer, requirements) for _ in range(4)]

    outcomes = settle_together(payments, requirements)

    assert sum(isinstance(outcome, Transfer) for outcome in outcomes) == 1
    assert outcomes.count(Reason.INSUFFICIENT_FUNDS) == 3
    assert balance_of(token=token, address=payer.address) == 0
    assert balance_of(token=token, address=payee.address) == 2 * PRICE


@pytest.mark.django_db
def test_funding_comes_from_the_mint(token):
    wallet = account_new().address

    transfer = wallet_fund(address=wallet, amount=ONE_AIN)

    assert (transfer.kind, transfer.payer, transfer.payee) == (
        Transfer.Kind.FUNDING,
        MINT_ADDRESS,
        wallet,
    )
    assert balance_of(token=token, address=MINT_ADDRESS) == -ONE_AIN


@pytest.mark.django_db
def test_funding_is_refused_in_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(ApplicationError, match="refused in production"):
        wallet_fund(address=account_new().address, amount=ONE_AIN)

    assert not Transfer.objects.exists()


@pytest.mark.django_db
def test_a_balance_cannot_be_made_negative(payer):
    with pytest.raises(IntegrityError):
        Balance.objects.filter(address=payer.address).update(amount=-1)


@pytest.mark.django_db
def test_a_nonce_cannot_be_recorded_twice(payment, requirements):
    transfer = payment_settle(payload=payment, requirements=requirements)
    transfer.pk = None
    transfer.transaction = "0x" + "0" * 64

    with pytest.raises(IntegrityError):
        transfer.save()


@pytest.mark.parametrize(
    ("value", "vendor", "exact"),
    [
        (2**256 - 1, "postgresql", True),
        (5_000_000_000_000_000, "sqlite", True),
        (12_500_000_000_000_000_000, "sqlite", True),
        (123_456_789_012_345_678, "sqlite", False),
        (-123_456_789_012_345, "sqlite", True),
    ],
)
def test_ledger_knows_which_amounts_the_database_holds_exactly(value, vendor, exact):
    assert database_holds_exactly(value, vendor=vendor) is exact
