from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest


class PasskeyBackend(ModelBackend):
    """Loads the signed-in account for each request and answers permission
    questions, but never signs anyone in by password: sign-in happens only
    after a verified passkey assertion (``accounts.services``)."""

    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, **credentials: Any
    ) -> AbstractBaseUser | None:
        return None
