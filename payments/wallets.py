"""Account wallets: private keys sealed at rest, and payments signed with
them on the server.

A key is sealed with AES-256-GCM under ``WALLET_ENCRYPTION_KEY``, with the
wallet's address as associated data, so that a sealed key copied onto
another wallet's row does not open. Without that setting the key is derived
from SECRET_KEY with HKDF, for development only: production refuses to
start without its own (see ``wallet_settings_findings``), so that changing
SECRET_KEY can never lock every wallet.

Nothing here logs, returns to a caller outside the server, or serializes a
private key or the encryption key.
"""

import base64
import binascii
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured
from eth_account import Account
from eth_account.signers.local import LocalAccount
from x402.schemas import PaymentPayload, PaymentRequired

from payments.clients import paying_client
from payments.models import AccountWallet
from payments.token import Token, token_configured

ENCRYPTION_KEY_BYTES = 32
NONCE_BYTES = 12
# The first byte of a sealed key names how it was sealed, so that another
# way can be added beside this one.
SEAL_AES_GCM = b"\x01"
DERIVATION_INFO = b"lessongraph account wallet keys v1"


class WalletCannotPay(Exception):
    """No way of paying the offer is in the token account wallets hold."""


class WalletKeyUnreadable(Exception):
    """A sealed key that does not open: the encryption key changed, or the
    row was altered."""


def encryption_key() -> bytes:
    """The key that seals wallet keys: ``WALLET_ENCRYPTION_KEY``, or in
    development one derived from SECRET_KEY."""
    configured = settings.WALLET_ENCRYPTION_KEY
    if configured:
        return _encryption_key_decode(configured)
    return HKDF(
        algorithm=hashes.SHA256(),
        length=ENCRYPTION_KEY_BYTES,
        salt=None,
        info=DERIVATION_INFO,
    ).derive(settings.SECRET_KEY.encode())


def key_seal(private_key: bytes, *, address: str) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(encryption_key()).encrypt(nonce, private_key, address.encode())
    return SEAL_AES_GCM + nonce + sealed


def key_open(sealed: bytes | memoryview, *, address: str) -> bytes:
    sealed = bytes(sealed)  # PostgreSQL reads it back as a memoryview
    if sealed[:1] != SEAL_AES_GCM:
        raise WalletKeyUnreadable(
            f"The key of wallet {address} is sealed in a way this site does not know."
        )
    nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(encryption_key()).decrypt(nonce, ciphertext, address.encode())
    except InvalidTag:
        raise WalletKeyUnreadable(
            f"The key of wallet {address} does not open with WALLET_ENCRYPTION_KEY."
        ) from None


def wallet_signer(wallet: AccountWallet) -> LocalAccount:
    """The wallet's key, opened for signing; it stays in this process."""
    signer = Account.from_key(key_open(wallet.sealed_key, address=wallet.address))
    if signer.address != wallet.address:
        raise WalletKeyUnreadable(f"The key of wallet {wallet.address} is another's.")
    return signer


def payment_sign(
    wallet: AccountWallet, *, offer: PaymentRequired, token: Token
) -> PaymentPayload:
    """Pay ``offer`` in ``token`` from ``wallet``, as the official client
    pays: the same payload any paying program would send."""
    accepts = [
        accepted
        for accepted in offer.accepts
        if (accepted.network, accepted.asset.lower())
        == (token.network, token.address.lower())
    ]
    if not accepts:
        raise WalletCannotPay(
            f"This lesson is not sold in {token.symbol} on {token.network}, the "
            "token account wallets hold; it cannot be bought from the page."
        )
    client = paying_client(
        wallet_signer(wallet), network=token.network, asset=token.address
    )
    payload = client.create_payment_payload(
        offer.model_copy(update={"accepts": accepts})
    )
    if not isinstance(payload, PaymentPayload):
        raise RuntimeError(
            "The client signed a version-1 payment for a version-2 offer."
        )
    return payload


def wallet_settings_findings() -> list[CheckMessage]:
    """What is wrong with the wallet settings; nothing when all is well.
    No message quotes a key."""
    findings: list[CheckMessage] = []
    configured = settings.WALLET_ENCRYPTION_KEY
    if configured:
        try:
            _encryption_key_decode(configured)
        except ValueError as error:
            findings.append(Error(str(error), id="payments.E004"))
    elif settings.PRODUCTION:
        findings.append(
            Error(
                "Production needs its own WALLET_ENCRYPTION_KEY; the development "
                "key derived from SECRET_KEY is refused. Make one with: python -c "
                '"import base64, os; print(base64.urlsafe_b64encode(os.urandom(32))'
                '.decode())"',
                id="payments.E005",
            )
        )
    try:
        starting_balance()
    except (ValueError, ImproperlyConfigured) as error:
        findings.append(Error(str(error), id="payments.E006"))
    return findings


def starting_balance() -> int:
    """What a new account's wallet is funded with, in the token's smallest
    unit: ``WALLET_STARTING_BALANCE``, and nothing in production."""
    try:
        units = token_configured().units_from_text(settings.WALLET_STARTING_BALANCE)
    except ValueError as error:
        raise ValueError(f"WALLET_STARTING_BALANCE: {error}") from None
    return 0 if settings.PRODUCTION else units


def _encryption_key_decode(text: str) -> bytes:
    try:
        key = base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError):
        key = b""
    if len(key) != ENCRYPTION_KEY_BYTES:
        raise ValueError(
            "WALLET_ENCRYPTION_KEY must be 32 random bytes in URL-safe base64 "
            "(44 characters)."
        )
    return key
