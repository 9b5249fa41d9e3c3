"""Recording sales as purchases, once each, and auditing them against the
ledger."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import ProtectedError

from payments.models import Purchase
from payments.services import payment_settle, purchase_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def settled(payment, requirements):
    return payment_settle(payload=payment, requirements=requirements)


def record(lesson, transfer, **changes):
    fields = {
        "transaction_id": transfer.transaction,
        "payer": transfer.payer,
        "payee": transfer.payee,
        "asset": transfer.asset,
        "network": transfer.network,
    }
    lines = [(lesson, changes.pop("amount", transfer.units))]
    return purchase_record(lines=lines, **{**fields, **changes})[0]


def test_a_sale_is_recorded_once_however_often_it_is_reported(lesson, settled):
    first = record(lesson, settled)
    again = record(lesson, settled)

    assert again == first
    assert Purchase.objects.count() == 1


def test_a_sold_lesson_cannot_be_deleted(lesson, settled):
    record(lesson, settled)

    with pytest.raises(ProtectedError):
        lesson.delete()


def audit() -> str:
    out = StringIO()
    call_command("ledger_audit", stdout=out, stderr=out)
    return out.getvalue()


def test_audit_passes_purchases_with_their_settlements(lesson, settled):
    record(lesson, settled)

    assert "The ledger is sound." in audit()


def test_audit_catches_a_purchase_without_a_settlement(lesson, settled):
    record(lesson, settled, transaction_id="0x" + "cd" * 32)

    with pytest.raises(CommandError, match="1 breaches"):
        audit()


def test_audit_catches_a_purchase_that_differs_from_its_settlement(lesson, settled):
    record(lesson, settled, amount=settled.units + 1)

    out = StringIO()
    with pytest.raises(CommandError):
        call_command("ledger_audit", stdout=out, stderr=out)

    assert f"records {settled.units + 1}" in out.getvalue()
