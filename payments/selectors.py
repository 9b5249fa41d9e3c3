from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q, QuerySet

from lessons.models import Lesson
from payments.models import (
    MINT_ADDRESS,
    AccountWallet,
    Balance,
    Purchase,
    Transfer,
)
from payments.token import Token, token_configured


def balance_of(*, token: Token, address: str) -> int:
    balance = Balance.objects.filter(
        network=token.network, asset=token.address, address=address
    ).first()
    return balance.units if balance else 0


def payer_position(*, token: Token, payer: str, nonce: str) -> tuple[int, bool]:
    """What ``payer`` holds, and whether it has spent ``nonce`` already, in
    one query. A payer without a balance has never settled anything.

    Written as SQL: it runs on every paid request, and building this query
    with the ORM took longer than running it (0.7 of 0.9 ms in-process,
    measured beside bench/payments.py).
    """
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('amount')}, EXISTS ("
        f"SELECT 1 FROM {quote(str(Transfer._meta.db_table))} WHERE "
        f"{quote('network')} = %s AND {quote('asset')} = %s AND "
        f"{quote('payer')} = %s AND {quote('nonce')} = %s"
        f") FROM {quote(str(Balance._meta.db_table))} WHERE "
        f"{quote('network')} = %s AND {quote('asset')} = %s AND {quote('address')} = %s"
    )
    where = [token.network, token.address]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*where, payer, nonce, *where, payer])
        row = cursor.fetchone()
    if row is None:
        return 0, False
    amount, spent = row
    # PostgreSQL answers a Decimal; SQLite an int, or a float past 2**63
    # (the ledger keeps those to 15 digits there, which a float holds).
    return int(Decimal(str(amount))), bool(spent)


def nonce_used(*, token: Token, payer: str, nonce: str) -> bool:
    return Transfer.objects.filter(
        network=token.network, asset=token.address, payer=payer, nonce=nonce
    ).exists()


def settlement_find(
    *, network: str, asset: str, payer: str, nonce: str
) -> Transfer | None:
    """The ledger's settlement of ``payer``'s ``nonce``, if it holds one."""
    return Transfer.objects.filter(
        kind=Transfer.Kind.SETTLEMENT,
        network=network,
        asset=asset,
        payer=payer,
        nonce=nonce,
    ).first()


def transfers_of(*, token: Token, address: str) -> QuerySet[Transfer]:
    """Everything an address paid or received, oldest first."""
    return Transfer.objects.filter(
        Q(payer=address) | Q(payee=address),
        network=token.network,
        asset=token.address,
    ).order_by("created", "pk")


def ledger_findings() -> list[str]:
    """Breaches of the ledger's rules, in words; none on a sound ledger.

    1. No transaction id and no (network, asset, payer, nonce) belongs to
       more than one transfer: each settlement is one transfer, and no
       authorization was spent twice.
    2. Fundings come from the mint and settlements never do; amounts are
       positive.
    3. Every balance equals the sum of its address's transfers, and every
       address with transfers has a balance.
    4. No balance but the mint's is negative.
    5. Every purchase paid in the ledger's token has its settlement, with
       the same payer, payee and amount.

    The database's constraints already forbid most of this; the audit is
    there for the day one is dropped or a row is edited by hand.
    """
    misfits = Transfer.objects.filter(
        (Q(kind=Transfer.Kind.FUNDING) & ~Q(payer=MINT_ADDRESS))
        | (Q(kind=Transfer.Kind.SETTLEMENT) & Q(payer=MINT_ADDRESS))
        | ~Q(kind__in=Transfer.Kind.values)
        | Q(amount__lte=0)
    )
    findings = _duplicates()
    findings += [
        f"Transfer {transaction} is a {kind} of {amount} paid by {payer}: "
        "fundings come from the mint, settlements never do, amounts are positive."
        for transaction, kind, amount, payer in misfits.values_list(
            "transaction", "kind", "amount", "payer"
        )
    ]
    findings += _balance_findings()
    findings += _purchase_findings()
    return findings


def _duplicates() -> list[str]:
    findings = [
        f"Transaction id {row['transaction']} belongs to {row['count']} transfers."
        for row in Transfer.objects.values("transaction")
        .annotate(count=Count("pk"))
        .filter(count__gt=1)
    ]
    findings += [
        f"Nonce {row['nonce']} of {row['payer']} on {row['network']} was spent "
        f"{row['count']} times."
        for row in Transfer.objects.values("network", "asset", "payer", "nonce")
        .annotate(count=Count("pk"))
        .filter(count__gt=1)
    ]
    return findings


def _balance_findings() -> list[str]:
    # Summed in Python, where integers are exact on every database; SQLite
    # would sum these 78-digit numbers in floating point.
    # Limitation: the audit reads every transfer once; a ledger of many
    # millions of rows would want the sums from PostgreSQL instead.
    expected: defaultdict[tuple[str, str, str], int] = defaultdict(int)
    rows = Transfer.objects.values_list("network", "asset", "payer", "payee", "amount")
    for network, asset, payer, payee, amount in rows.iterator():
        expected[network, asset, payer] -= int(amount)
        expected[network, asset, payee] += int(amount)

    findings = []
    balances = Balance.objects.values_list("network", "asset", "address", "amount")
    for network, asset, address, amount in balances.iterator():
        held = int(amount)
        transferred = expected.pop((network, asset, address), 0)
        if held != transferred:
            findings.append(
                f"Balance of {address} ({asset} on {network}) is {held}, "
                f"its transfers add up to {transferred}."
            )
        if held < 0 and address != MINT_ADDRESS:
            findings.append(f"Balance of {address} ({asset} on {network}) is negative.")
    findings += [
        f"{address} ({asset} on {network}) has transfers adding up to {transferred} "
        "but no balance."
        for (network, asset, address), transferred in expected.items()
    ]
    return findings


def lesson_find(*, slug: str) -> Lesson | None:
    """The lesson, with its author's wallet, which its sales pay."""
    return Lesson.objects.select_related("author__wallet").filter(slug=slug).first()


@dataclass(frozen=True)
class Receipt:
    """What one payment bought: a lesson, or the lessons of a path, each a
    Purchase with its price."""

    lines: list[Purchase]

    @property
    def first(self) -> Purchase:
        return self.lines[0]

    @property
    def units(self) -> int:
        return sum(line.units for line in self.lines)


def receipt_find(*, transaction: str) -> Receipt | None:
    """The receipt of ``transaction``, an id as a visitor wrote it in a URL;
    None when nothing was sold in it."""
    # No id is stored longer than its column, and PostgreSQL refuses a NUL
    # character in a query instead of finding nothing.
    longest = Purchase._meta.get_field("transaction").max_length or 0
    if len(transaction) > longest or "\x00" in transaction:
        return None
    lines = list(
        Purchase.objects.select_related("lesson")
        .filter(transaction=transaction)
        .order_by("pk")
    )
    return Receipt(lines) if lines else None


def _purchase_findings() -> list[str]:
    """Each settlement's purchases, one per lesson sold, against it: the
    same payer and payee, and prices adding up to what moved."""
    # Purchases settled by other facilitators, in other tokens, are not in
    # this ledger.
    token = token_configured()
    purchases = Purchase.objects.filter(network=token.network, asset=token.address)
    settlements = {
        transfer.transaction: transfer
        for transfer in Transfer.objects.filter(
            kind=Transfer.Kind.SETTLEMENT,
            transaction__in=purchases.values("transaction"),
        )
    }
    sold: defaultdict[str, list[Purchase]] = defaultdict(list)
    for purchase in purchases.order_by("transaction", "pk").iterator():
        sold[purchase.transaction].append(purchase)

    findings = []
    for transaction, lines in sold.items():
        transfer = settlements.get(transaction)
        lessons = ", ".join(str(line.lesson_id) for line in lines)
        if transfer is None:
            findings.append(
                f"Purchase {transaction} of lesson {lessons} has no settlement "
                "in the ledger."
            )
            continue
        units = sum(line.units for line in lines)
        parties = {(line.payer, line.payee) for line in lines}
        if parties != {(transfer.payer, transfer.payee)} or units != transfer.units:
            payer, payee = sorted(parties)[0]
            findings.append(
                f"Purchase {transaction} records {units} from {payer} to {payee}; "
                f"its settlement moved {transfer.units} from {transfer.payer} to "
                f"{transfer.payee}."
            )
    return findings


@dataclass(frozen=True)
class Holdings:
    """What an account's own page shows of its money: its wallet, if one
    was made, with the balance, and every lesson it bought, newest first."""

    wallet_address: str | None
    balance: int
    token: Token
    purchases: list[Purchase]

    @property
    def balance_text(self) -> str:
        return self.token.text_from_units(self.balance)

    @property
    def lines(self) -> list[tuple[Purchase, str]]:
        """Each purchase with its price, in whole tokens when it was paid
        in the site's token (an external facilitator's offer may use
        another)."""
        ours = (self.token.network, self.token.address.lower())
        return [
            (
                purchase,
                self.token.text_from_units(purchase.units)
                if (purchase.network, purchase.asset.lower()) == ours
                else f"{purchase.units} units of {purchase.asset}",
            )
            for purchase in self.purchases
        ]


def account_holdings(*, account_id: int) -> Holdings:
    """The account's wallet and purchases; reading never makes a wallet
    (making one funds it, outside production)."""
    token = token_configured()
    wallet = AccountWallet.objects.filter(account_id=account_id).first()
    balance = balance_of(token=token, address=wallet.address) if wallet else 0
    purchases = list(
        Purchase.objects.select_related("lesson").filter(account_id=account_id)
    )
    return Holdings(
        wallet_address=wallet.address if wallet else None,
        balance=balance,
        token=token,
        purchases=purchases,
    )
