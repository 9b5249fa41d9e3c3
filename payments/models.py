"""A double-entry ledger of one token, in the database instead of on a chain.

Accounts are EVM addresses, stored in their checksummed (EIP-55) form. Every
movement is a ``Transfer`` from one address to another; new tokens come from
the mint (the zero address, as ERC-20 mints do), whose balance is minus the
supply, so the balances of a token always add up to zero.
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.checks import CheckMessage
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

MINT_ADDRESS = "0x0000000000000000000000000000000000000000"

address_validator = RegexValidator(
    r"^0x[0-9a-fA-F]{40}\Z", "Enter a 0x address of 40 hex digits."
)
hash_validator = RegexValidator(
    r"^0x[0-9a-f]{64}\Z", "Enter 0x and 64 lowercase hex digits."
)

# uint256 has 78 decimal digits. On PostgreSQL this is NUMERIC(78, 0): exact.
AMOUNT_DIGITS = 78


class Transfer(models.Model):
    class Kind(models.TextChoices):
        FUNDING = "funding", "Funding"
        SETTLEMENT = "settlement", "Settlement"

    transaction = models.CharField(
        max_length=66,
        unique=True,
        validators=[hash_validator],
        help_text="Our transaction id, shaped like a chain's: 0x and 64 hex digits.",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    network = models.CharField(max_length=64)
    asset = models.CharField(max_length=42, validators=[address_validator])
    payer = models.CharField(max_length=42, validators=[address_validator])
    payee = models.CharField(max_length=42, validators=[address_validator])
    amount = models.DecimalField(
        max_digits=AMOUNT_DIGITS,
        decimal_places=0,
        help_text="In the token's smallest unit.",
    )
    nonce = models.CharField(
        max_length=66,
        validators=[hash_validator],
        help_text="The EIP-3009 nonce the payer signed; random for a funding.",
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created", "pk"]
        constraints = [
            # The replay guard: an authorization settles at most once.
            models.UniqueConstraint(
                fields=["network", "asset", "payer", "nonce"],
                name="payments_transfer_nonce_once",
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="payments_transfer_amount_positive"
            ),
            # Only the mint funds, and the mint never pays for anything.
            models.CheckConstraint(
                condition=(Q(kind="funding") & Q(payer=MINT_ADDRESS))
                | (Q(kind="settlement") & ~Q(payer=MINT_ADDRESS)),
                name="payments_transfer_kind_matches_payer",
            ),
        ]
        indexes = [
            models.Index(
                fields=["network", "asset", "payee"], name="payments_transfer_payee"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.transaction}"

    @property
    def units(self) -> int:
        return int(self.amount)


class Balance(models.Model):
    """What an address holds, kept in step with its transfers in the same
    database transaction. ``ledger_audit`` checks it against them."""

    network = models.CharField(max_length=64)
    asset = models.CharField(max_length=42, validators=[address_validator])
    address = models.CharField(max_length=42, validators=[address_validator])
    amount = models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=0, default=Decimal(0)
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["network", "asset", "address"]
        constraints = [
            models.UniqueConstraint(
                fields=["network", "asset", "address"], name="payments_balance_once"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0) | Q(address=MINT_ADDRESS),
                name="payments_balance_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.address} {self.amount}"

    @property
    def units(self) -> int:
        return int(self.amount)


class PurchaseQuerySet(models.QuerySet["Purchase"]):
    def of_account(
        self, account: AbstractBaseUser | AnonymousUser
    ) -> "PurchaseQuerySet":
        """What ``account`` bought; nothing for a visitor not signed in."""
        if not account.is_authenticated:
            return self.none()
        return self.filter(account=account)


class Purchase(models.Model):
    """A lesson sold through x402: its line of the receipt of one settled
    payment.

    One payment buys one lesson, or, for a learning path, every lesson of
    the path the buyer did not own: one row per lesson, each with its own
    price, adding up to what was settled. Written after the facilitator
    settled, keyed by its transaction id and the lesson, so that recording
    the same settlement twice keeps one row per lesson. Addresses and ids
    are as the facilitator gave them; an offer settled elsewhere may use
    another chain's forms, hence no address validators here.
    """

    transaction = models.CharField(
        max_length=128,
        help_text="The settlement's transaction id, as the facilitator gave it.",
    )
    # A receipt outlives nothing it refers to: a sold lesson cannot be
    # deleted (make it free or hide it instead).
    lesson = models.ForeignKey(
        "lessons.Lesson", on_delete=models.PROTECT, related_name="purchases"
    )
    payer = models.CharField(max_length=128)
    payee = models.CharField(max_length=128)
    amount = models.DecimalField(
        max_digits=AMOUNT_DIGITS,
        decimal_places=0,
        help_text="In the token's smallest unit.",
    )
    asset = models.CharField(max_length=128)
    network = models.CharField(max_length=64)
    # The account that bought, from the lesson page or with its API token;
    # empty for a program that paid without naming an account.
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="purchases",
    )
    created = models.DateTimeField(default=timezone.now)

    objects = PurchaseQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="payments_purchase_amount_positive"
            ),
            models.UniqueConstraint(
                fields=["transaction", "lesson"],
                name="payments_purchase_transaction_lesson_once",
            ),
            # An account buys a lesson once; a second buy finds the first.
            models.UniqueConstraint(
                fields=["account", "lesson"],
                condition=Q(account__isnull=False),
                name="payments_purchase_account_lesson_once",
            ),
        ]
        indexes = [
            models.Index(fields=["lesson", "created"], name="payments_purchase_lesson"),
            models.Index(fields=["payer"], name="payments_purchase_payer"),
        ]

    def __str__(self) -> str:
        return f"{self.lesson_id} bought in {self.transaction}"

    @property
    def units(self) -> int:
        return int(self.amount)


class AccountWallet(models.Model):
    """The wallet an account pays from on the lesson page.

    Its private key never leaves the server: it is kept encrypted
    (payments/wallets.py), is not editable in forms, and is left out of
    ``str`` and ``repr``.
    """

    # Limitation: deleting an account deletes its wallet's key, and whatever
    # the wallet holds can no longer be spent.
    account = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallet"
    )
    address = models.CharField(
        max_length=42, unique=True, validators=[address_validator]
    )
    sealed_key = models.BinaryField(
        editable=False,
        help_text="The private key, encrypted with WALLET_ENCRYPTION_KEY.",
    )
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Wallet {self.address}"

    def __repr__(self) -> str:
        return f"<AccountWallet {self.address}>"

    @classmethod
    def check(cls, **kwargs: Any) -> list[CheckMessage]:
        """The model's checks and the wallet settings: wallets cannot be made
        or spent without a usable encryption key."""
        from payments.wallets import wallet_settings_findings

        return [*super().check(**kwargs), *wallet_settings_findings()]
