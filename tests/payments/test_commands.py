"""The wallet and ledger commands."""

import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from eth_account import Account

from payments.models import Balance
from payments.selectors import balance_of
from payments.services import payment_settle
from tests.payments.factories import ONE_AIN, PRICE, account_new

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def test_wallet_create_writes_a_key_only_its_owner_reads(tmp_path, token):
    key_file = tmp_path / "wallet.key"

    address = run("wallet_create", "--key-file", str(key_file)).strip()

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Account.from_key(key_file.read_text().strip()).address == address
    assert balance_of(token=token, address=address) == 0
    assert Balance.objects.filter(address=address).exists()


def test_wallet_create_never_overwrites_a_file(tmp_path):
    key_file = tmp_path / "wallet.key"
    key_file.write_text("precious\n")

    with pytest.raises(CommandError, match="never overwritten"):
        run("wallet_create", "--key-file", str(key_file))

    assert key_file.read_text() == "precious\n"


def test_wallet_fund_adds_whole_tokens(token):
    wallet = account_new().address

    output = run("wallet_fund", wallet, "1.5")

    assert balance_of(token=token, address=wallet) == 3 * ONE_AIN // 2
    assert "1.5 AIN" in output


@pytest.mark.parametrize(
    ("address", "amount", "problem"),
    [
        ("0x1234", "1", "40 hex digits"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "1", "checksum"),
        ("0x0000000000000000000000000000000000000000", "1", "mint"),
        (None, "-1", "not an amount"),
        (None, "1e3", "not an amount"),
        (None, "1,5", "not an amount"),
        (None, "0.0000000000000000001", "decimal places"),
        (None, "0", "positive"),
    ],
)
def test_wallet_fund_refuses_bad_input(address, amount, problem):
    with pytest.raises(CommandError, match=problem):
        run("wallet_fund", address or account_new().address, amount)

    assert not Balance.objects.exclude(amount=0).exists()


def test_wallet_fund_is_refused_in_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="refused in production"):
        run("wallet_fund", account_new().address, "1")


def test_statement_shows_balance_and_transfers(payment, requirements, payer):
    transfer = payment_settle(payload=payment, requirements=requirements)

    statement = run("wallet_statement", payer.address)

    assert "Balance: 0.995 AIN (995000000000000000)" in statement
    assert (
        "funding    +1 AIN from 0x0000000000000000000000000000000000000000" in statement
    )
    assert (
        f"settlement -0.005 AIN to {requirements.pay_to} {transfer.transaction}"
        in statement
    )


def test_statement_refuses_a_bad_address():
    with pytest.raises(CommandError, match="40 hex digits"):
        run("wallet_statement", "nobody")


def test_audit_passes_on_a_sound_ledger(payment, requirements):
    payment_settle(payload=payment, requirements=requirements)

    assert "The ledger is sound." in run("ledger_audit")


def test_audit_catches_a_corrupted_balance(payment, requirements, payer):
    payment_settle(payload=payment, requirements=requirements)
    Balance.objects.filter(address=payer.address).update(amount=ONE_AIN)

    out = StringIO()
    with pytest.raises(CommandError, match="1 breaches"):
        call_command("ledger_audit", stdout=out, stderr=out)

    assert f"Balance of {payer.address}" in out.getvalue()
    assert f"is {ONE_AIN}, its transfers add up to {ONE_AIN - PRICE}" in out.getvalue()


def test_audit_catches_a_balance_without_transfers(payer):
    Balance.objects.create(
        network=Balance.objects.get(address=payer.address).network,
        asset=Balance.objects.get(address=payer.address).asset,
        address=account_new().address,
        amount=PRICE,
    )

    with pytest.raises(CommandError, match="1 breaches"):
        run("ledger_audit")
