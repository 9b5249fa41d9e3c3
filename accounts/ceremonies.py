"""The WebAuthn edge: py_webauthn builds the options and checks the answers.

The rest of the app calls these functions with plain values. The relying
party id and the allowed origins come from settings only, never from the
request's Host header. User verification is always required.
"""

import json
import logging
from typing import Any

import webauthn
from django.conf import settings
from webauthn.helpers import (
    base64url_to_bytes,
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
    except (KeyError, TypeError, ValueError, WebAuthnException) as error:
        raise _refused(
            "the passkey answer has no readable client data", error
        ) from None
    return client_data.challenge


def credential_id_of(credential: Any) -> bytes:
    try:
        raw_id = base64url_to_bytes(credential["rawId"])
    except (KeyError, TypeError, ValueError) as error:
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
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise _refused(
            "the passkey answer has an unreadable user handle", error
        ) from None


def sign_count_of(credential: Any) -> int:
    try:
        data = base64url_to_bytes(credential["response"]["authenticatorData"])
        return int(parse_authenticator_data(data).sign_count)
    except (KeyError, TypeError, ValueError, WebAuthnException) as error:
        raise _refused(
            "the passkey answer has unreadable authenticator data", error
        ) from None


def verify_registration(*, credential: Any, challenge: bytes) -> VerifiedRegistration:
    try:
        return webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=list(settings.WEBAUTHN_ORIGINS),
            require_user_verification=True,
        )
    except (WebAuthnException, KeyError, TypeError, ValueError) as error:
        raise _refused("the new passkey could not be verified", error) from None


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
    except (WebAuthnException, KeyError, TypeError, ValueError) as error:
        raise _refused("the passkey signature could not be verified", error) from None
    return int(verified.new_sign_count)


def _refused(message: str, cause: Exception | None = None) -> PasskeyRefused:
    # The library's own words go to the log, not to the client.
    logger.warning("Passkey answer refused: %s (%s)", message, cause or "no detail")
    return PasskeyRefused(f"Passkey refused: {message}.")
