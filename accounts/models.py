import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac

USER_HANDLE_BYTES = 32

# ASCII only, so that no two names look alike in another script (a Latin
# "a" and a Cyrillic one look the same); names differ by more than case.
display_name_validator = RegexValidator(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]| (?! ))*(?<! )$",
    "A display name is 1 to 64 letters (A to Z), digits, single spaces, "
    "dots, hyphens or underscores, starting with a letter or digit.",
)


def new_user_handle() -> bytes:
    """The WebAuthn user id: random, never the database id or the name."""
    return secrets.token_bytes(USER_HANDLE_BYTES)


class User(AbstractUser):
    """An account. Accounts sign in with passkeys only: the password stays
    unusable and no backend checks one."""

    class Role(models.TextChoices):
        LEARNER = "learner"
        INSTRUCTOR = "instructor"
        STAFF = "staff"

    username = models.CharField(
        "display name",
        max_length=64,
        unique=True,
        validators=[display_name_validator],
        error_messages={"unique": "That display name is taken."},
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LEARNER)
    user_handle = models.BinaryField(
        max_length=64, unique=True, default=new_user_handle, editable=False
    )
    # Moves when a passkey is removed: every session signed in before ends.
    credentials_version = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("username"),
                name="display_name_unique_ignoring_case",
                violation_error_message="That display name is taken.",
            )
        ]

    def get_session_auth_hash(self) -> str:
        """Sessions carry this and end when it changes. With passwords
        unusable, Django's own hash would never change; this one changes
        when a passkey is removed."""
        return salted_hmac(
            "accounts.User.get_session_auth_hash",
            f"{self.password}:{self.credentials_version}",
            algorithm="sha256",
        ).hexdigest()

    @property
    def is_instructor(self) -> bool:
        return self.role in {User.Role.INSTRUCTOR, User.Role.STAFF}


class Passkey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkeys"
    )
    name = models.CharField(max_length=100)
    # Browsers may send credential ids of any length; no cap here.
    credential_id = models.BinaryField(unique=True)
    public_key = models.BinaryField()
    sign_count = models.PositiveBigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    aaguid = models.CharField(max_length=36, blank=True)
    backed_up = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"


class Challenge(models.Model):
    """A WebAuthn challenge waiting for its answer. Each is used once: the
    row is deleted before the answer is checked, whatever the outcome."""

    class Purpose(models.TextChoices):
        SIGN_UP = "sign-up"
        SIGN_IN = "sign-in"
        ADD_PASSKEY = "add-passkey"
        REAUTHENTICATE = "reauthenticate"

    challenge = models.BinaryField(unique=True)
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    # Bound to the browser session that asked, or to the API token.
    session_key = models.CharField(max_length=64, blank=True)
    token = models.ForeignKey(
        "ApiToken", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    payload = models.JSONField(default=dict, blank=True)
    expires = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.purpose} challenge until {self.expires:%H:%M:%S}"

    @staticmethod
    def lifetime() -> timedelta:
        return timedelta(seconds=settings.WEBAUTHN_CHALLENGE_SECONDS)


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is kept; the secret is shown
    once, when it is made."""

    PREFIX = "lg_"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=12, editable=False)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)
    # A passkey assertion made through the API for this token.
    reauthenticated = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()
