"""Sign-up, sign-in, passkeys, re-authentication and API tokens.

Every ceremony is two calls: ``*_begin`` issues a challenge bound to the
browser session (or API token) that asked and returns the options for the
browser; ``*_complete`` consumes that challenge first, so it is used once
even when the answer is then refused, and checks the answer.
"""

import logging
import secrets
import unicodedata
from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts import ceremonies
from accounts.ceremonies import PasskeyRefused
from accounts.models import ApiToken, Challenge, Passkey, User
from config.errors import ApplicationError
from config.parsing import DIRECTION_CONTROLS

logger = logging.getLogger(__name__)

CHALLENGE_BYTES = 32
DEFAULT_PASSKEY_NAME = "Passkey"


def challenge_issue(
    *,
    purpose: Challenge.Purpose,
    session_key: str = "",
    user: User | None = None,
    token: ApiToken | None = None,
    payload: dict[str, Any] | None = None,
) -> bytes:
    now = timezone.now()
    Challenge.objects.filter(expires__lt=now).delete()
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    Challenge.objects.create(
        challenge=challenge,
        purpose=purpose,
        session_key=session_key,
        user=user,
        token=token,
        payload=payload or {},
        expires=now + Challenge.lifetime(),
    )
    return challenge


def challenge_consume(
    *,
    credential: Any,
    purpose: Challenge.Purpose,
    session_key: str = "",
    user: User | None = None,
    token: ApiToken | None = None,
) -> Challenge:
    """Take the challenge an answer carries out of the store, or refuse it.
    Deleting is the claim: of two answers to one challenge, one wins."""
    value = ceremonies.challenge_of(credential)
    found = Challenge.objects.filter(
        challenge=value,
        purpose=purpose,
        session_key=session_key,
        user=user,
        token=token,
    ).first()
    if found is None or Challenge.objects.filter(pk=found.pk).delete()[0] != 1:
        logger.warning("Passkey answer with an unknown or used %s challenge", purpose)
        raise PasskeyRefused(
            "Passkey refused: the challenge is unknown or already used."
        )
    if found.expires < timezone.now():
        logger.warning("Passkey answer to an expired %s challenge", purpose)
        raise PasskeyRefused(
            "Passkey refused: the challenge expired; please try again."
        )
    return found


# Sign-up ------------------------------------------------------------------


def signup_begin(*, display_name: str, session_key: str) -> dict[str, Any]:
    """Refuse any name the account could not be stored under before the
    browser makes a passkey: a refusal after it would leave an orphan
    passkey on the device."""
    display_name = display_name.strip()
    try:
        User._meta.get_field("username").clean(display_name, None)
    except ValidationError as error:
        raise PasskeyRefused(" ".join(error.messages)) from None
    if User.objects.filter(username__iexact=display_name).exists():
        raise PasskeyRefused("That display name is taken.", status=HTTPStatus.CONFLICT)
    user_handle = secrets.token_bytes(32)
    challenge = challenge_issue(
        purpose=Challenge.Purpose.SIGN_UP,
        session_key=session_key,
        payload={"display_name": display_name, "user_handle": user_handle.hex()},
    )
    return ceremonies.registration_options(
        challenge=challenge, user_handle=user_handle, user_name=display_name, exclude=[]
    )


def signup_complete(
    *, credential: Any, session_key: str, passkey_name: str = ""
) -> User:
    pending = challenge_consume(
        credential=credential,
        purpose=Challenge.Purpose.SIGN_UP,
        session_key=session_key,
    )
    verified = ceremonies.verify_registration(
        credential=credential, challenge=bytes(pending.challenge)
    )
    display_name = pending.payload["display_name"]
    try:
        with transaction.atomic():
            if User.objects.filter(username__iexact=display_name).exists():
                raise IntegrityError("display name taken")
            user = User(
                username=display_name,
                user_handle=bytes.fromhex(pending.payload["user_handle"]),
            )
            user.set_unusable_password()
            user.full_clean()
            user.save()
            passkey = _passkey_store(user, verified, credential, passkey_name)
            # The new session is signed in with it: that is its first use.
            passkey.last_used = passkey.created
            passkey.save(update_fields=["last_used"])
    except (IntegrityError, ValidationError):
        raise PasskeyRefused(
            "That display name or passkey is already registered.",
            status=HTTPStatus.CONFLICT,
        ) from None
    logger.info("Account %s signed up with a passkey", user.pk)
    return user


# Sign-in and re-authentication --------------------------------------------


def signin_begin(*, session_key: str) -> dict[str, Any]:
    challenge = challenge_issue(
        purpose=Challenge.Purpose.SIGN_IN, session_key=session_key
    )
    # No allowed list: the browser offers the passkeys it holds for us.
    return ceremonies.authentication_options(challenge=challenge, allow=[])


def signin_complete(*, credential: Any, session_key: str) -> User:
    pending = challenge_consume(
        credential=credential,
        purpose=Challenge.Purpose.SIGN_IN,
        session_key=session_key,
    )
    passkey = _assertion_verify(
        credential, bytes(pending.challenge), handle_required=True
    )
    logger.info("Account %s signed in with passkey %s", passkey.user_id, passkey.pk)
    return passkey.user


def reauth_begin(
    *, user: User, session_key: str = "", token: ApiToken | None = None
) -> dict[str, Any]:
    challenge = challenge_issue(
        purpose=Challenge.Purpose.REAUTHENTICATE,
        session_key=session_key,
        user=user,
        token=token,
    )
    return ceremonies.authentication_options(
        challenge=challenge, allow=_credential_ids(user)
    )


def reauth_complete(
    *, user: User, credential: Any, session_key: str = "", token: ApiToken | None = None
) -> Passkey:
    pending = challenge_consume(
        credential=credential,
        purpose=Challenge.Purpose.REAUTHENTICATE,
        session_key=session_key,
        user=user,
        token=token,
    )
    passkey = _assertion_verify(credential, bytes(pending.challenge), owner=user)
    if token is not None:
        ApiToken.objects.filter(pk=token.pk).update(reauthenticated=timezone.now())
    logger.info("Account %s re-authenticated with passkey %s", user.pk, passkey.pk)
    return passkey


def _assertion_verify(
    credential: Any,
    challenge: bytes,
    *,
    owner: User | None = None,
    handle_required: bool = False,
) -> Passkey:
    """Check an assertion against the stored passkey and move its counter.

    1. The credential must be registered here, to ``owner`` when given.
    2. The signature, origin, RP id and user verification must hold. Nothing
       about the account is told or logged before this, so a forged answer
       learns nothing but that the credential id is unknown.
    3. The user handle, when sent (always, for sign-in), must be the owner's.
    4. A counter that does not move forward is refused, unless both are 0.
    5. The counter moves with a conditional update: of two answers carrying
       the same counter, only one can succeed.
    """
    credential_id = ceremonies.credential_id_of(credential)
    passkey = (
        Passkey.objects.select_related("user")
        .filter(credential_id=credential_id)
        .first()
    )
    if passkey is None or (owner is not None and passkey.user_id != owner.pk):
        logger.warning("Assertion from a passkey not registered to the account")
        raise PasskeyRefused(
            "Passkey refused: this passkey is not registered"
            + (" to your account." if owner else " here.")
        )

    # The library's own counter check is turned off (a stored count of 0):
    # the counter is checked below, once the signature is known to be good.
    new_count = ceremonies.verify_assertion(
        credential=credential,
        challenge=challenge,
        public_key=bytes(passkey.public_key),
        sign_count=0,
    )
    if not passkey.user.is_active:
        logger.warning("Assertion for inactive account %s", passkey.user_id)
        raise PasskeyRefused("Passkey refused: this account is disabled.")

    handle = ceremonies.user_handle_of(credential)
    if (handle is None and handle_required) or (
        handle is not None and handle != bytes(passkey.user.user_handle)
    ):
        logger.warning(
            "Assertion with a user handle not of passkey %s's owner", passkey.pk
        )
        raise PasskeyRefused("Passkey refused: the passkey belongs to another account.")

    if (new_count or passkey.sign_count) and new_count <= passkey.sign_count:
        logger.warning(
            "Sign counter of passkey %s went backwards (stored %s, sent %s): "
            "the authenticator may have been cloned",
            passkey.pk,
            passkey.sign_count,
            new_count,
        )
        raise PasskeyRefused("Passkey refused: its signature counter went backwards.")

    moved = Passkey.objects.filter(pk=passkey.pk, sign_count=passkey.sign_count).update(
        sign_count=new_count, last_used=timezone.now()
    )
    if moved != 1:
        logger.warning(
            "Passkey %s was used twice at once; refusing the second", passkey.pk
        )
        raise PasskeyRefused(
            "Passkey refused: it was used at the same moment elsewhere."
        )
    passkey.sign_count = new_count
    return passkey


# Managing passkeys --------------------------------------------------------


def passkey_add_begin(*, user: User, session_key: str) -> dict[str, Any]:
    challenge = challenge_issue(
        purpose=Challenge.Purpose.ADD_PASSKEY, session_key=session_key, user=user
    )
    return ceremonies.registration_options(
        challenge=challenge,
        user_handle=bytes(user.user_handle),
        user_name=user.username,
        exclude=_credential_ids(user),
    )


def passkey_add_complete(
    *, user: User, credential: Any, session_key: str, name: str = ""
) -> Passkey:
    pending = challenge_consume(
        credential=credential,
        purpose=Challenge.Purpose.ADD_PASSKEY,
        session_key=session_key,
        user=user,
    )
    verified = ceremonies.verify_registration(
        credential=credential, challenge=bytes(pending.challenge)
    )
    try:
        with transaction.atomic():
            passkey = _passkey_store(user, verified, credential, name)
    except IntegrityError:
        logger.warning("Account %s tried to register a passkey twice", user.pk)
        raise PasskeyRefused(
            "This passkey is already registered.", status=HTTPStatus.CONFLICT
        ) from None
    logger.info("Account %s added passkey %s", user.pk, passkey.pk)
    return passkey


def _credential_ids(user: User) -> list[bytes]:
    return [bytes(key) for key in user.passkeys.values_list("credential_id", flat=True)]


def _passkey_store(user: User, verified: Any, credential: Any, name: str) -> Passkey:
    transports = credential.get("response", {}).get("transports")
    if not isinstance(transports, list):
        transports = []
    passkey = Passkey(
        user=user,
        name=_passkey_name(name, user),
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=[
            item[:32]
            for item in transports
            if isinstance(item, str) and item.isprintable()
        ][:8],
        aaguid=str(verified.aaguid),
        backed_up=bool(getattr(verified, "credential_backed_up", False)),
    )
    passkey.full_clean(exclude=["credential_id"])
    passkey.save()
    return passkey


def plain_name(name: str) -> str:
    """A name as people typed it: runs of white space made one space, and
    control characters (NUL, which PostgreSQL refuses to store) and marks
    turning the text's direction left out."""
    kept = "".join(
        " " if character.isspace() else character
        for character in name
        if character.isspace()
        or not (
            unicodedata.category(character) == "Cc"
            or unicodedata.bidirectional(character) in DIRECTION_CONTROLS
        )
    )
    return " ".join(kept.split())


def _passkey_name(name: str, user: User) -> str:
    name = plain_name(name)[:100]
    return name or f"{DEFAULT_PASSKEY_NAME} {user.passkeys.count() + 1}"


def passkey_rename(*, passkey: Passkey, name: str) -> Passkey:
    name = plain_name(name)
    if not 1 <= len(name) <= 100:
        raise PasskeyRefused("A passkey name is 1 to 100 characters.")
    passkey.name = name
    passkey.save(update_fields=["name"])
    return passkey


def passkey_remove(*, passkey: Passkey) -> None:
    """Remove a passkey, but never an account's last one: without a passkey
    nobody could sign in to it again. Every session of the account ends,
    since one may have been signed in with the removed passkey; the caller
    keeps its own session with ``update_session_auth_hash``."""
    with transaction.atomic():
        owned = list(
            Passkey.objects.select_for_update()
            .filter(user_id=passkey.user_id)
            .values_list("pk", flat=True)
        )
        if passkey.pk not in owned:
            return
        if len(owned) == 1:
            raise PasskeyRefused(
                "This is the account's only passkey: add another before removing it, "
                "or you could never sign in again.",
                status=HTTPStatus.CONFLICT,
            )
        Passkey.objects.filter(pk=passkey.pk).delete()
        User.objects.filter(pk=passkey.user_id).update(
            credentials_version=F("credentials_version") + 1
        )
    logger.info("Account %s removed passkey %s", passkey.user_id, passkey.pk)


def account_sign_out_everywhere(*, user: User) -> None:
    """End every session of the account, on every device. API tokens are
    not sessions and stay until revoked."""
    User.objects.filter(pk=user.pk).update(
        credentials_version=F("credentials_version") + 1
    )
    logger.info("Account %s signed out everywhere", user.pk)


# API tokens and roles -----------------------------------------------------


def token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Make a token; the secret is returned here and never again."""
    name = plain_name(name)[:100] or "API token"
    secret = ApiToken.PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, digest=ApiToken.digest_of(secret), hint=secret[:10]
    )
    logger.info("Account %s created API token %s", user.pk, token.pk)
    return token, secret


def token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked__isnull=True).update(
        revoked=timezone.now()
    )
    logger.info("API token %s revoked", token.pk)


def user_set_role(*, user: User, role: str) -> User:
    if role not in User.Role.values:
        raise ApplicationError(
            f"Unknown role {role!r}; choose one of {', '.join(User.Role.values)}."
        )
    user.role = role
    # Staff run the site; instructors author lessons in the admin.
    user.is_superuser = role == User.Role.STAFF
    user.is_staff = role in {User.Role.STAFF, User.Role.INSTRUCTOR}
    user.save(update_fields=["role", "is_staff", "is_superuser"])
    authoring = Permission.objects.filter(content_type__app_label="lessons")
    if role == User.Role.INSTRUCTOR:
        user.user_permissions.add(*authoring)
    else:
        user.user_permissions.remove(*authoring)
    logger.info("Account %s is now %s", user.pk, role)
    return user
