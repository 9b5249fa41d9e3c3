"""The deployments' keys: sealing example secrets at rest, the Ed25519 key
that signs provenance, and the registry's password.

Secrets are sealed with AES-256-GCM under ``DEPLOYMENTS_SECRETS_KEY``, with
the secret's scope and name as associated data, so that a sealed value
copied onto another secret's row does not open. Without the setting each
key is derived from SECRET_KEY (or, for signing, kept in a file under
``DEPLOYMENTS_DIR``), in development only; production refuses to start
without its own (``deployments.checks``).

Nothing here logs or returns a key to a caller outside the server.
"""

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

KEY_BYTES = 32
NONCE_BYTES = 12
# The first byte of a sealed value names how it was sealed.
SEAL_AES_GCM = b"\x01"


class SecretUnreadable(Exception):
    """A sealed value that does not open: the key changed or the row was
    altered."""


def key_decode(text: str, *, setting: str) -> bytes:
    try:
        key = base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ValueError(
            f"{setting} must be 32 random bytes in URL-safe base64 (44 characters)."
        )
    return key


def _derived(purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose
    ).derive(settings.SECRET_KEY.encode())


def secrets_key() -> bytes:
    configured = settings.DEPLOYMENTS_SECRETS_KEY
    if configured:
        return key_decode(configured, setting="DEPLOYMENTS_SECRETS_KEY")
    return _derived(b"lessongraph deployment secrets v1")


def secret_seal(value: str, *, scope: str, name: str) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    associated = f"{scope}/{name}".encode()
    sealed = AESGCM(secrets_key()).encrypt(nonce, value.encode(), associated)
    return SEAL_AES_GCM + nonce + sealed


def secret_open(sealed: bytes | memoryview, *, scope: str, name: str) -> str:
    sealed = bytes(sealed)  # PostgreSQL reads it back as a memoryview
    if sealed[:1] != SEAL_AES_GCM:
        raise SecretUnreadable(f"Secret {scope}/{name} is sealed in an unknown way.")
    nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    associated = f"{scope}/{name}".encode()
    try:
        return AESGCM(secrets_key()).decrypt(nonce, ciphertext, associated).decode()
    except InvalidTag:
        raise SecretUnreadable(
            f"Secret {scope}/{name} does not open with DEPLOYMENTS_SECRETS_KEY."
        ) from None


def signing_key() -> Ed25519PrivateKey:
    """The site's provenance key: ``DEPLOYMENTS_SIGNING_KEY``, or in
    development a key file made once under ``DEPLOYMENTS_DIR``."""
    configured = settings.DEPLOYMENTS_SIGNING_KEY
    if configured:
        seed = key_decode(configured, setting="DEPLOYMENTS_SIGNING_KEY")
        return Ed25519PrivateKey.from_private_bytes(seed)
    path = settings.DEPLOYMENTS_DIR / "signing.key"
    if not path.exists():
        _key_file_make(path)
    return Ed25519PrivateKey.from_private_bytes(path.read_bytes())


def _key_file_make(path: Path) -> None:
    """Write a new key to ``path`` unless another process did first.

    The key is written whole to a file of its own, then linked in place:
    a link fails when the name exists, so two workers starting together
    keep one key, and neither can read the other's half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=".signing-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(KEY_BYTES))
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        os.unlink(draft)


def public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


def public_key_text() -> str:
    raw = public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.urlsafe_b64encode(raw).decode()


def registry_password() -> str:
    configured = settings.DEPLOYMENTS_REGISTRY_PASSWORD
    if configured:
        return str(configured)
    derived = hmac.new(
        settings.SECRET_KEY.encode(), b"lessongraph registry password", hashlib.sha256
    )
    return derived.hexdigest()
