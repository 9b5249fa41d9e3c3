"""Wallets, funding, and verifying and settling x402 "exact" payments on
the ledger (payments/models.py)."""

import logging
import os
import secrets
import time
from collections.abc import Sequence
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from x402.schemas import PaymentPayload, PaymentRequirements

from accounts.models import User
from config.errors import ApplicationError
from lessons.models import Lesson
from payments import eip3009, selectors, wallets
from payments.eip3009 import UINT256_MAX, MalformedField
from payments.models import MINT_ADDRESS, AccountWallet, Balance, Purchase, Transfer
from payments.token import Token, token_configured
from payments.verification import Payment, PaymentRefused, Reason, payment_check

logger = logging.getLogger(__name__)

# SQLite keeps 15 significant digits of a number, and Django reads decimals
# back through a float; PostgreSQL's NUMERIC(78, 0) keeps all of them.
SQLITE_SIGNIFICANT_DIGITS = 15


def wallet_create(*, key_file: Path) -> str:
    """Make a key pair, write its private key to ``key_file`` (mode 0600,
    never over an existing file), open the address's balance at zero and
    return the address."""
    key, address = eip3009.private_key_new()
    try:
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ApplicationError(
            f"{key_file} exists; a key file is never overwritten."
        ) from None
    except OSError as error:
        raise ApplicationError(f"Cannot create {key_file}: {error.strerror}.") from None
    with os.fdopen(descriptor, "w") as stream:
        # The umask may only take bits away; make the mode exactly 0600.
        os.fchmod(stream.fileno(), 0o600)
        stream.write(key + "\n")

    token = token_configured()
    Balance.objects.get_or_create(
        network=token.network, asset=token.address, address=address
    )
    logger.info("Wallet %s created", address)
    return address


def wallet_fund(*, address: str, amount: int) -> Transfer:
    """Mint ``amount`` (in the token's smallest unit) into a wallet, for
    development and tests; refused in production."""
    if settings.PRODUCTION:
        raise ApplicationError(
            "Funding wallets from the mint is refused in production.",
            status=HTTPStatus.FORBIDDEN,
        )
    try:
        address = eip3009.address_parse(address, field="The address")
    except MalformedField as error:
        raise ApplicationError(str(error)) from None
    if address == MINT_ADDRESS:
        raise ApplicationError("The mint cannot fund itself.")
    if not 0 < amount <= UINT256_MAX:
        raise ApplicationError("A funding must be a positive amount below 2**256.")

    token = token_configured()
    with transaction.atomic():
        balances = _balances_lock(token=token, addresses=[MINT_ADDRESS, address])
        # The mint's balance is minus the supply, and a supply is a uint256.
        if amount - balances[MINT_ADDRESS].units > UINT256_MAX:
            raise ApplicationError("The token's supply would pass 2**256 - 1.")
        funding = _transfer_record(
            kind=Transfer.Kind.FUNDING,
            token=token,
            payer=MINT_ADDRESS,
            payee=address,
            amount=amount,
            nonce="0x" + secrets.token_hex(32),
            balances=balances,
        )
    # A fresh random nonce: never a conflict.
    assert funding is not None
    transfer = funding
    logger.info(
        "Wallet %s funded with %s in transfer %s",
        address,
        token.text_from_units(amount),
        transfer.transaction,
    )
    return transfer


def wallet_for(account: User) -> AccountWallet:
    """The account's wallet, made on first need.

    1. A new key pair; its private key is sealed (payments/wallets.py)
       before it is stored.
    2. In one transaction: the wallet row, its balance opened at zero and,
       outside production, ``WALLET_STARTING_BALANCE`` funded from the mint.
    3. Two requests making the same account's wallet at once: the unique
       account column keeps one, and the other reads it back unfunded.
    """
    # Limitation: nothing pays into an account's wallet but the starting
    # balance and `wallet_fund`, both refused in production, so there an
    # account's wallet stays empty and buying from the page is refused for
    # insufficient funds until a way to deposit exists.
    existing = AccountWallet.objects.filter(account=account).first()
    if existing is not None:
        return existing

    key, address = eip3009.private_key_new()
    wallet = AccountWallet(
        account=account,
        address=address,
        sealed_key=wallets.key_seal(bytes.fromhex(key[2:]), address=address),
    )
    del key
    wallet.full_clean(validate_unique=False, validate_constraints=False)
    token = token_configured()
    starting = wallets.starting_balance()
    try:
        with transaction.atomic():
            wallet.save()
            Balance.objects.get_or_create(
                network=token.network, asset=token.address, address=address
            )
            if starting:
                wallet_fund(address=address, amount=starting)
    except IntegrityError:
        existing = AccountWallet.objects.filter(account=account).first()
        if existing is None:
            raise
        return existing
    logger.info(
        "Wallet %s made for account %s, starting with %s",
        address,
        account.pk,
        token.text_from_units(starting),
    )
    return wallet


def payment_verify(
    *, payload: PaymentPayload, requirements: PaymentRequirements
) -> Payment:
    """Check a payment as settling it would, without moving anything;
    raise PaymentRefused with the reason."""
    try:
        payment = _payment_check(payload, requirements)
        authorization = payment.authorization
        # What settling would refuse, verifying refuses too.
        _exactness_check(authorization.value)
        balance, spent = selectors.payer_position(
            token=payment.token, payer=authorization.payer, nonce=authorization.nonce
        )
        if spent:
            raise _replay_refusal(payment)
        _balance_check(payment, balance=balance)
    except PaymentRefused as refusal:
        logger.info(
            "Payment from %s refused at verification: %s", refusal.payer, refusal.reason
        )
        raise
    return payment


def payment_settle(
    *, payload: PaymentPayload, requirements: PaymentRequirements
) -> Transfer:
    """Verify a payment again and move its value from payer to payee.

    1. The checks that need no ledger, as for verification.
    2. In one transaction: lock the payer's and the payee's balances (in
       address order, so that two opposite payments cannot deadlock), check
       that the balance is enough, record the transfer and move both
       balances.
    3. The unique (network, asset, payer, nonce) constraint guards against
       replays: an insert that conflicts with it means the authorization was
       settled before, or at the same moment elsewhere.

    Called inside a transaction (a sale records its purchase in the same
    one), the settlement is part of it.
    """
    try:
        payment = _payment_check(payload, requirements)
        transfer = _settlement_record(payment)
    except PaymentRefused as refusal:
        logger.warning(
            "Payment from %s refused at settlement: %s", refusal.payer, refusal.reason
        )
        raise
    authorization = payment.authorization
    logger.info(
        "Payment settled: %s from %s to %s in transfer %s",
        payment.token.text_from_units(authorization.value),
        authorization.payer,
        authorization.payee,
        transfer.transaction,
    )
    return transfer


def _settlement_record(payment: Payment) -> Transfer:
    refusal, transfer = _settlement_try(payment)
    if refusal is not None:
        raise refusal
    assert transfer is not None
    return transfer


def _settlement_try(
    payment: Payment,
) -> tuple[PaymentRefused | None, Transfer | None]:
    """The settlement, or why not, with nothing written then.

    No savepoint when the caller holds a transaction already (a sale): a
    settlement is on the path of every paid request and each savepoint is
    two round trips. So nothing in the block raises on a refusal, which
    would doom the caller's transaction; refusals are returned, and a
    replay is found by the insert itself rather than by an IntegrityError.
    """
    authorization = payment.authorization
    with transaction.atomic(savepoint=False):
        balances = _balances_lock(
            token=payment.token,
            addresses=[authorization.payer, authorization.payee],
        )
        refusal = _balance_refusal(payment, balance=balances[authorization.payer].units)
        if refusal is not None:
            return refusal, None
        transfer = _transfer_record(
            kind=Transfer.Kind.SETTLEMENT,
            token=payment.token,
            payer=authorization.payer,
            payee=authorization.payee,
            amount=authorization.value,
            nonce=authorization.nonce,
            balances=balances,
        )
    if transfer is None:
        logger.warning(
            "Nonce %s of %s was settled before; refused the replay",
            authorization.nonce,
            authorization.payer,
        )
        return _replay_refusal(payment), None
    return None, transfer


def purchase_record(
    *,
    lines: Sequence[tuple[Lesson, int]],
    transaction_id: str,
    payer: str,
    payee: str,
    asset: str,
    network: str,
    account: User | None = None,
    settled_here: bool = False,
) -> list[Purchase]:
    """Record what was sold in ``transaction_id``: each lesson of ``lines``
    with its price (in the asset's smallest unit), to ``account`` when the
    buyer named one.

    Called right after the facilitator settled, in the settlement's
    transaction when the site's own facilitator settled it. All the lines
    are written, or none. Recording the same settlement again returns the
    first rows: an insert that conflicts with them reads them back. Any
    other conflict (the account owns one of the lessons already) raises
    IntegrityError.

    ``settled_here``: the site's own facilitator settled it in the caller's
    transaction, so its id is new and nothing can be recorded under it yet;
    the rows are inserted without a savepoint, a round trip each way on
    every paid request, and any conflict raises.
    """
    purchases = [
        Purchase(
            transaction=transaction_id,
            lesson=lesson,
            payer=payer,
            payee=payee,
            amount=Decimal(amount),
            asset=asset,
            network=network,
            account=account,
        )
        for lesson, amount in lines
    ]
    if not purchases:
        raise ValueError(f"Transaction {transaction_id} records no lesson.")
    for purchase in purchases:
        # The lessons and the account were read from the database just now.
        purchase.full_clean(
            exclude=["lesson", "account"],
            validate_unique=False,
            validate_constraints=False,
        )
    try:
        with transaction.atomic(savepoint=not settled_here):
            Purchase.objects.bulk_create(purchases)
    except IntegrityError:
        if settled_here:
            raise
        existing = list(Purchase.objects.filter(transaction=transaction_id))
        if {row.lesson_id for row in existing} != {row.lesson_id for row in purchases}:
            raise
        return existing
    logger.info(
        "%s sold to %s for %s units of %s in transaction %s",
        ", ".join(lesson.slug for lesson, _ in lines),
        payer,
        sum(amount for _, amount in lines),
        asset,
        transaction_id,
    )
    return purchases


def database_holds_exactly(value: int, *, vendor: str) -> bool:
    """Whether the database stores ``value`` and reads it back unchanged."""
    if vendor == "postgresql":
        return True
    return len(str(abs(value)).rstrip("0")) <= SQLITE_SIGNIFICANT_DIGITS


def _payment_check(
    payload: PaymentPayload, requirements: PaymentRequirements
) -> Payment:
    return payment_check(
        payload=payload,
        requirements=requirements,
        token=token_configured(),
        now=int(time.time()),
        skew=settings.X402_CLOCK_SKEW_SECONDS,
    )


def _balance_check(payment: Payment, *, balance: int) -> None:
    refusal = _balance_refusal(payment, balance=balance)
    if refusal is not None:
        raise refusal


def _balance_refusal(payment: Payment, *, balance: int) -> PaymentRefused | None:
    authorization = payment.authorization
    if balance >= authorization.value:
        return None
    return PaymentRefused(
        Reason.INSUFFICIENT_FUNDS,
        f"{authorization.payer} holds {payment.token.text_from_units(balance)}; "
        f"the payment is {payment.token.text_from_units(authorization.value)}.",
        payer=authorization.payer,
    )


def _replay_refusal(payment: Payment) -> PaymentRefused:
    return PaymentRefused(
        Reason.NONCE_USED,
        f"Nonce {payment.authorization.nonce} of {payment.payer} was already "
        "settled; an authorization pays once.",
        payer=payment.payer,
    )


def _balances_lock(*, token: Token, addresses: list[str]) -> dict[str, Balance]:
    """Lock the balances of ``addresses``, opening the missing ones at zero,
    in one statement.

    An INSERT ... ON CONFLICT DO UPDATE takes each row, new or existing, in
    the order of its VALUES: sorted by address, every settlement and funding
    locks its balances in the same order. Locking the balances there are
    and opening the missing ones after would take a lower address after a
    higher one: two settlements with the same payer, one of which found the
    payee's balance missing, could each wait for the other until the
    database broke the deadlock by failing one. The update writes the
    amount back unchanged; the transfer moves it.
    """
    wanted = sorted(set(addresses))
    meta = Balance._meta
    quote = connection.ops.quote_name
    table = quote(str(meta.db_table))
    amount = meta.get_field("amount")
    updated = meta.get_field("updated")
    key = ", ".join(quote(column) for column in ("network", "asset", "address"))
    sql = (
        f"INSERT INTO {table} ({key}, {quote('amount')}, {quote('updated')}) "
        f"VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(wanted))} "
        f"ON CONFLICT ({key}) DO UPDATE SET "
        f"{quote('amount')} = {table}.{quote('amount')} "
        f"RETURNING {quote('id')}, {quote('address')}, {quote('amount')}"
    )
    zero = amount.get_db_prep_save(Decimal(0), connection)
    now = updated.get_db_prep_save(timezone.now(), connection)
    params: list[Any] = []
    for address in wanted:
        params += [token.network, token.address, address, zero, now]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()

    balances = {}
    for pk, address, held in rows:
        balance = Balance(
            pk=pk,
            network=token.network,
            asset=token.address,
            address=address,
            # SQLite answers an int, or a float past 2**63 (the ledger keeps
            # those to 15 digits there, which a float holds exactly).
            amount=Decimal(int(Decimal(str(held)))),
        )
        balance._state.adding = False
        balance._state.db = connection.alias
        balances[address] = balance
    return balances


def _transfer_record(
    *,
    kind: Transfer.Kind,
    token: Token,
    payer: str,
    payee: str,
    amount: int,
    nonce: str,
    balances: dict[str, Balance],
) -> Transfer | None:
    """Record one transfer and move both balances with it; None, with
    nothing written, when the payer's nonce was used already. The caller
    holds the transaction and the locks on both balances."""
    transfer = Transfer(
        transaction="0x" + secrets.token_hex(32),
        kind=kind,
        network=token.network,
        asset=token.address,
        payer=payer,
        payee=payee,
        amount=Decimal(amount),
        nonce=nonce,
    )
    # Uniqueness and the check constraints are left to the database, which
    # enforces them at insert time under the locks held; checking them here
    # first would only race them.
    transfer.full_clean(validate_unique=False, validate_constraints=False)
    _exactness_check(amount)
    if not _transfer_insert(transfer):
        return None

    held = {address: balances[address].units for address in (payer, payee)}
    held[payer] -= amount
    held[payee] += amount
    for address, units in held.items():
        _exactness_check(units)
        balance = balances[address]
        balance.amount = Decimal(units)
        balance.full_clean(validate_unique=False, validate_constraints=False)
    _balances_write([balances[address] for address in held])
    return transfer


def _balances_write(balances: list[Balance]) -> None:
    """Save the amounts of ``balances`` in one statement.

    Written as SQL: a settlement is on the path of every paid request, and
    the ORM's CASE expression cost four times the query itself (0.8 ms
    in-process, measured beside bench/payments.py).
    """
    quote = connection.ops.quote_name
    amount = Balance._meta.get_field("amount")
    updated = Balance._meta.get_field("updated")
    cases = " ".join(f"WHEN {quote('id')} = %s THEN %s" for _ in balances)
    sql = (
        f"UPDATE {quote(str(Balance._meta.db_table))} "
        f"SET {quote('amount')} = CASE {cases} END, {quote('updated')} = %s "
        f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(balances))})"
    )
    params: list[Any] = []
    for balance in balances:
        params += [balance.pk, amount.get_db_prep_save(balance.amount, connection)]
    params.append(updated.get_db_prep_save(timezone.now(), connection))
    params += [balance.pk for balance in balances]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _transfer_insert(transfer: Transfer) -> bool:
    """Insert ``transfer`` unless its payer used its nonce before; whether
    it was inserted.

    ON CONFLICT DO NOTHING, which Django's ORM cannot say with a RETURNING:
    a used nonce is then an answer, not an IntegrityError that would need a
    savepoint to recover from. PostgreSQL and SQLite (3.35+) both speak it.
    """
    meta = Transfer._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    conflict = ("network", "asset", "payer", "nonce")
    sql = (
        f"INSERT INTO {quote(str(meta.db_table))} "
        f"({', '.join(quote(str(field.column)) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({', '.join(quote(column) for column in conflict)}) "
        f"DO NOTHING RETURNING {quote(str(meta.pk.column))}"
    )
    values = [
        field.get_db_prep_save(getattr(transfer, field.attname), connection)
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    transfer.pk = row[0]
    transfer._state.adding = False
    transfer._state.db = connection.alias
    return True


def _exactness_check(value: int) -> None:
    # Limitation: on SQLite (the `make run` default) the ledger refuses any
    # amount or balance of more than 15 significant digits rather than
    # round it; 0.005 or 12.5 AIN are fine, 0.123456789012345678 AIN is
    # not. PostgreSQL keeps every digit.
    if not database_holds_exactly(value, vendor=connection.vendor):
        raise PaymentRefused(
            Reason.UNEXPECTED_SETTLE_ERROR,
            f"This database ({connection.vendor}) keeps only "
            f"{SQLITE_SIGNIFICANT_DIGITS} significant digits, so it cannot hold "
            f"{value} exactly; the ledger needs PostgreSQL for such amounts.",
        )
