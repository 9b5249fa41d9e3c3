"""The "exact" EVM scheme's checks of one payment against one requirement.

These checks need no database: the payload's shape, that the requirement is
one this facilitator serves, that the payment is for exactly what was
required, its time window and its signature. The ledger's checks (an unused
nonce, enough balance) are made by the services, under lock when settling.
"""

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus

from django.conf import settings
from x402.schemas import PaymentPayload, PaymentRequirements

from config.errors import ApplicationError
from payments import eip3009
from payments.eip3009 import Authorization, MalformedField
from payments.models import MINT_ADDRESS
from payments.token import Token

X402_VERSION = 2
SCHEME = "exact"


class Reason(enum.StrEnum):
    """Machine reasons, as ``invalidReason`` and ``errorReason`` carry them.

    Where the x402 specification (section 9) or the official package's
    ``x402.mechanisms.evm.constants`` has a word for a refusal we use it;
    tests/payments/test_verification.py checks that these strings stay equal
    to the package's. The strings are spelled out here because importing
    ``x402.mechanisms.evm`` imports web3, about a second at every start.
    Those marked "ours" have no standard word; the last five are the
    resource server's (payments/gate.py), not the facilitator's.
    """

    INVALID_VERSION = "invalid_x402_version"
    INVALID_PAYLOAD = "invalid_payload"
    INVALID_REQUIREMENTS = "invalid_payment_requirements"
    INVALID_NETWORK = "invalid_network"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    MISSING_DOMAIN = "missing_eip712_domain"
    TOKEN_NAME_MISMATCH = "invalid_exact_evm_token_name_mismatch"
    TOKEN_VERSION_MISMATCH = "invalid_exact_evm_token_version_mismatch"
    NETWORK_MISMATCH = "network_mismatch"
    ASSET_MISMATCH = "invalid_exact_evm_payload_asset_mismatch"  # ours
    RECIPIENT_MISMATCH = "invalid_exact_evm_payload_recipient_mismatch"
    VALUE_MISMATCH = "invalid_exact_evm_payload_authorization_value_mismatch"
    NOT_YET_VALID = "invalid_exact_evm_payload_authorization_valid_after"
    EXPIRED = "invalid_exact_evm_payload_authorization_valid_before"
    WINDOW_TOO_LONG = "invalid_exact_evm_payload_authorization_window"  # ours
    INVALID_SIGNATURE = "invalid_exact_evm_payload_signature"
    NONCE_USED = "invalid_exact_evm_nonce_already_used"
    # The specification's word. The package's EVM facilitator says
    # "invalid_exact_evm_insufficient_balance" instead.
    INSUFFICIENT_FUNDS = "insufficient_funds"
    UNEXPECTED_SETTLE_ERROR = "unexpected_settle_error"
    UNEXPECTED_VERIFY_ERROR = "unexpected_verify_error"  # ours
    RESOURCE_MISMATCH = "resource_mismatch"  # ours
    AMBIGUOUS_PAYMENT = "ambiguous_payment"  # ours
    FACILITATOR_UNAVAILABLE = "facilitator_unavailable"  # ours
    SALE_NOT_RECORDED = "sale_not_recorded"  # ours


class PaymentRefused(ApplicationError):
    def __init__(
        self, reason: Reason, message: str, *, payer: str | None = None
    ) -> None:
        super().__init__(
            message,
            status=HTTPStatus.PAYMENT_REQUIRED,
            extra={"reason": str(reason), "payer": payer},
        )
        self.reason = reason
        self.payer = payer


@dataclass(frozen=True)
class Payment:
    """A payment whose signature and terms have been checked."""

    token: Token
    authorization: Authorization

    @property
    def payer(self) -> str:
        return self.authorization.payer


def payment_check(
    *,
    payload: PaymentPayload,
    requirements: PaymentRequirements,
    token: Token,
    now: int,
    skew: int,
) -> Payment:
    """Check a payment without the ledger, or raise PaymentRefused.

    1. The protocol version, then the payload's shape (so that every later
       refusal can name the payer).
    2. The requirement is one we serve: "exact", our network, our token.
    3. What the payer accepted is exactly the requirement, and the
       authorization pays the requirement's payee its amount.
    4. The time window holds, with ``skew`` seconds of tolerance.
    5. The EIP-712 signature recovers the payer.
    """
    if payload.x402_version != X402_VERSION:
        raise PaymentRefused(
            Reason.INVALID_VERSION,
            f"x402Version {payload.x402_version} is not supported; this facilitator "
            f"speaks version {X402_VERSION}.",
        )
    try:
        signed = eip3009.signed_authorization_parse(payload.payload)
    except MalformedField as error:
        raise PaymentRefused(Reason.INVALID_PAYLOAD, str(error)) from None
    authorization = signed.authorization
    payer = authorization.payer
    if payer == MINT_ADDRESS:
        raise PaymentRefused(
            Reason.INVALID_PAYLOAD, "The zero address cannot pay.", payer=payer
        )

    payee, amount = _requirements_check(requirements, token, payer)
    _accepted_check(payload.accepted, requirements, payer)
    if authorization.payee != payee:
        raise PaymentRefused(
            Reason.RECIPIENT_MISMATCH,
            f"The authorization pays {authorization.payee}, the requirement's "
            f"payTo is {payee}.",
            payer=payer,
        )
    if authorization.value != amount:
        raise PaymentRefused(
            Reason.VALUE_MISMATCH,
            f"The authorization is for {authorization.value}, the requirement "
            f"asks exactly {amount}.",
            payer=payer,
        )
    # A caller of /facilitator/settle writes its own requirement: whatever it
    # says, no payment stays usable longer than this site ever offers.
    max_timeout = min(
        requirements.max_timeout_seconds, settings.X402_MAX_TIMEOUT_SECONDS
    )
    _window_check(authorization, max_timeout, now, skew)

    if eip3009.signer_recover(signed, token.domain) != payer:
        raise PaymentRefused(
            Reason.INVALID_SIGNATURE,
            f"The signature is not {payer}'s over this authorization and token.",
            payer=payer,
        )
    return Payment(token=token, authorization=authorization)


def _requirements_check(
    requirements: PaymentRequirements, token: Token, payer: str
) -> tuple[str, int]:
    """Refuse a requirement this facilitator does not serve; return its
    payee and amount, read strictly."""
    if requirements.scheme != SCHEME:
        raise PaymentRefused(
            Reason.UNSUPPORTED_SCHEME,
            f"Scheme {requirements.scheme!r} is not supported; only {SCHEME!r} is.",
            payer=payer,
        )
    if requirements.network != token.network:
        raise PaymentRefused(
            Reason.INVALID_NETWORK,
            f"Network {requirements.network!r} is not supported; only "
            f"{token.network!r} is.",
            payer=payer,
        )
    try:
        asset = eip3009.address_parse(
            requirements.asset, field="paymentRequirements.asset"
        )
        payee = eip3009.address_parse(
            requirements.pay_to, field="paymentRequirements.payTo"
        )
        amount = eip3009.integer_parse(
            requirements.amount, field="paymentRequirements.amount"
        )
    except MalformedField as error:
        raise PaymentRefused(
            Reason.INVALID_REQUIREMENTS, str(error), payer=payer
        ) from None
    if asset != token.address:
        raise PaymentRefused(
            Reason.INVALID_REQUIREMENTS,
            f"Asset {asset} is not supported; only {token.symbol} at {token.address} is.",
            payer=payer,
        )
    if payee == MINT_ADDRESS or amount == 0 or requirements.max_timeout_seconds <= 0:
        raise PaymentRefused(
            Reason.INVALID_REQUIREMENTS,
            "The requirement must pay a nonzero address a positive amount within a "
            "positive maxTimeoutSeconds.",
            payer=payer,
        )
    _domain_check(requirements, token, payer)
    return payee, amount


def _domain_check(requirements: PaymentRequirements, token: Token, payer: str) -> None:
    extra = requirements.extra or {}
    if "name" not in extra or "version" not in extra:
        raise PaymentRefused(
            Reason.MISSING_DOMAIN,
            "The requirement's extra must name the token's EIP-712 name and version.",
            payer=payer,
        )
    if extra["name"] != token.name:
        raise PaymentRefused(
            Reason.TOKEN_NAME_MISMATCH,
            f"The token's EIP-712 name is {token.name!r}, not {extra['name']!r}.",
            payer=payer,
        )
    if extra["version"] != token.version:
        raise PaymentRefused(
            Reason.TOKEN_VERSION_MISMATCH,
            f"The token's EIP-712 version is {token.version!r}, not {extra['version']!r}.",
            payer=payer,
        )


def _accepted_check(
    accepted: PaymentRequirements, requirements: PaymentRequirements, payer: str
) -> None:
    """What the payer says it accepted must be the requirement itself, so a
    payment quoted for one network, token, payee or price is not taken for
    another."""
    if accepted.scheme != requirements.scheme:
        raise PaymentRefused(
            Reason.UNSUPPORTED_SCHEME,
            f"The payment is for scheme {accepted.scheme!r}, the requirement is "
            f"{requirements.scheme!r}.",
            payer=payer,
        )
    if accepted.network != requirements.network:
        raise PaymentRefused(
            Reason.NETWORK_MISMATCH,
            f"The payment is for network {accepted.network!r}, the requirement is "
            f"{requirements.network!r}.",
            payer=payer,
        )
    # Addresses are compared as addresses: the same one in another letter
    # case is the same account. The requirement's were read already.
    checks = [
        ("asset", accepted.asset, requirements.asset, Reason.ASSET_MISMATCH),
        ("payTo", accepted.pay_to, requirements.pay_to, Reason.RECIPIENT_MISMATCH),
    ]
    for name, sent, required, reason in checks:
        try:
            sent_address = eip3009.address_parse(sent, field=f"accepted.{name}")
        except MalformedField as error:
            raise PaymentRefused(
                Reason.INVALID_PAYLOAD, str(error), payer=payer
            ) from None
        if sent_address != eip3009.address_parse(required, field=name):
            raise PaymentRefused(
                reason,
                f"The payment accepted {name} {sent}, the requirement is {required}.",
                payer=payer,
            )
    if accepted.amount != requirements.amount:
        raise PaymentRefused(
            Reason.VALUE_MISMATCH,
            f"The payment accepted amount {accepted.amount!r}, the requirement is "
            f"{requirements.amount!r}.",
            payer=payer,
        )


def _window_check(
    authorization: Authorization, max_timeout: int, now: int, skew: int
) -> None:
    """The authorization must be valid now, give or take ``skew`` seconds,
    and must not stay usable longer than the requirement's
    maxTimeoutSeconds.

    That last rule bounds ``validBefore - max(validAfter, now)``, not
    ``validBefore - validAfter``: the official Python client signs
    validAfter "0" and validBefore now + maxTimeoutSeconds (its version 1
    client, now - 600), so a bound on the whole window would refuse every
    payment a real client makes. What matters is how long from now the
    authorization can still be spent.
    """
    if authorization.valid_after >= authorization.valid_before:
        raise PaymentRefused(
            Reason.EXPIRED,
            "The authorization's validAfter is not before its validBefore: it is "
            "never valid.",
            payer=authorization.payer,
        )
    if authorization.valid_after > now + skew:
        raise PaymentRefused(
            Reason.NOT_YET_VALID,
            f"The authorization is valid only from {_when(authorization.valid_after)}.",
            payer=authorization.payer,
        )
    if authorization.valid_before < now - skew:
        raise PaymentRefused(
            Reason.EXPIRED,
            f"The authorization expired at {_when(authorization.valid_before)}.",
            payer=authorization.payer,
        )
    usable = authorization.valid_before - max(authorization.valid_after, now)
    if usable > max_timeout + skew:
        raise PaymentRefused(
            Reason.WINDOW_TOO_LONG,
            f"The authorization stays valid for {usable} seconds; the requirement "
            f"allows at most {max_timeout}.",
            payer=authorization.payer,
        )


def _when(timestamp: int) -> str:
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return f"Unix time {timestamp}"
