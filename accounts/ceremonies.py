"""The WebAuthn edge: py_webauthn builds the options and checks the answers.

The rest of the app calls these functions with plain values. The relying
party id and the allowed origins come from settings only, never from the
request's Host header. User verification is always required.
"""

import hashlib
import json
import logging
from typing import Any

import webauthn
from django.conf import settings
from webauthn.helpers import (
    base64url_to_bytes,
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    parse_attestation_object,
    parse_authenticator_data,
    parse_client_data_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from config.errors import ApplicationError

logger = logging.getLogger(__name__)


class PasskeyRefused(ApplicationError):
    """A WebAuthn answer that cannot be accepted. Never starts a session."""


# What the library and the parsers raise on answers they cannot read. A
# hostile answer can be any JSON at all, so this is wide on purpose.
MALFORMED = (
    WebAuthnException,
    KeyError,
    TypeError,
    ValueError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
)


def registration_options(
    *,
    challenge: bytes,
    user_handle: bytes,
    user_name: str,
    exclude: list[bytes],
) -> dict[str, Any]:
    options = webauthn.generate_registration_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        rp_name=settings.WEBAUTHN_RP_NAME,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=user_name,
        challenge=challenge,
        timeout=settings.WEBAUTHN_CHALLENGE_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        # One authenticator cannot register twice for the same account.
        exclude_credentials=[PublicKeyCredentialDescriptor(id=key) for key in exclude],
    )
    return json.loads(webauthn.options_to_json(options))


def authentication_options(*, challenge: bytes, allow: list[bytes]) -> dict[str, Any]:
    options = webauthn.generate_authentication_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        challenge=challenge,
        timeout=settings.WEBAUTHN_CHALLENGE_SECONDS * 1000,
        allow_credentials=[PublicKeyCredentialDescriptor(id=key) for key in allow],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return json.loads(webauthn.options_to_json(options))


def challenge_of(credential: Any) -> bytes:
    """The challenge a browser answered, read from its client data."""
    try:
        client_data = parse_client_data_json(
            base64url_to_bytes(credential["response"]["clientDataJSON"])
        )
    except MALFORMED as error:
        raise _refused(
            "the passkey answer has no readable client data", error
        ) from None
    return client_data.challenge


def credential_id_of(credential: Any) -> bytes:
    try:
        raw_id = base64url_to_bytes(credential["rawId"])
    except MALFORMED as error:
        raise _refused(
            "the passkey answer has no readable credential id", error
        ) from None
    if not raw_id:
        raise _refused("the passkey answer has an empty credential id")
    return raw_id


def user_handle_of(credential: Any) -> bytes | None:
    try:
        handle = credential["response"].get("userHandle")
        return base64url_to_bytes(handle) if handle else None
    except MALFORMED as error:
        raise _refused(
            "the passkey answer has an unreadable user handle", error
        ) from None


def sign_count_of(credential: Any) -> int:
    try:
        data = base64url_to_bytes(credential["response"]["authenticatorData"])
        return int(parse_authenticator_data(data).sign_count)
    except MALFORMED as error:
        raise _refused(
            "the passkey answer has unreadable authenticator data", error
        ) from None


def verify_registration(*, credential: Any, challenge: bytes) -> VerifiedRegistration:
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=list(settings.WEBAUTHN_ORIGINS),
            require_user_verification=True,
        )
    except MALFORMED as error:
        reason = _explain(credential, _registration_auth_data)
        raise _refused(
            reason or "the new passkey could not be verified", error
        ) from None
    # "none" attestation vouches for nothing: make sure the key can verify
    # a signature at all, or the account could never sign in with it.
    try:
        decoded_public_key_to_cryptography(
            decode_credential_public_key(verified.credential_public_key)
        )
    except MALFORMED as error:
        raise _refused("the new passkey's public key is not usable", error) from None
    return verified


def verify_assertion(
    *, credential: Any, challenge: bytes, public_key: bytes, sign_count: int
) -> int:
    """Check a signed assertion; return the authenticator's new counter."""
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=list(settings.WEBAUTHN_ORIGINS),
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=True,
        )
    except MALFORMED as error:
        reason = _explain(credential, _assertion_auth_data)
        raise _refused(
            reason or "the passkey signature could not be verified", error
        ) from None
    return int(verified.new_sign_count)


def _explain(credential: Any, auth_data_of: Any) -> str | None:
    """Say which check a refused answer failed, when the answer itself
    shows it: the library only says that it failed."""
    try:
        client_data = parse_client_data_json(
            base64url_to_bytes(credential["response"]["clientDataJSON"])
        )
        if client_data.origin not in settings.WEBAUTHN_ORIGINS:
            return f"the answer was made for another site ({client_data.origin[:80]})"
        auth_data = auth_data_of(credential)
        expected = hashlib.sha256(settings.WEBAUTHN_RP_ID.encode()).digest()
        if auth_data.rp_id_hash != expected:
            return "the answer was made for another relying party id"
        if not auth_data.flags.uv:
            return "the authenticator did not verify you (PIN, fingerprint or face)"
    except MALFORMED:
        return None
    return None


def _assertion_auth_data(credential: Any) -> Any:
    return parse_authenticator_data(
        base64url_to_bytes(credential["response"]["authenticatorData"])
    )


def _registration_auth_data(credential: Any) -> Any:
    attestation = parse_attestation_object(
        base64url_to_bytes(credential["response"]["attestationObject"])
    )
    return attestation.auth_data


def _refused(message: str, cause: Exception | None = None) -> PasskeyRefused:
    # The library's own words go to the log, not to the client.
    logger.warning("Passkey answer refused: %s (%s)", message, cause or "no detail")
    return PasskeyRefused(f"Passkey refused: {message}.")
