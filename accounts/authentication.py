from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiToken

# Writing the last-used time on every request would make each API call a
# write; once a minute is enough to tell which tokens are in use.
LAST_USED_GRANULARITY = timedelta(minutes=1)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer lg_...`` with a personal API token."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode(
            errors="replace"
        )
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        secret = secret.strip()
        if not secret.startswith(ApiToken.PREFIX) or len(secret) > 200:
            raise exceptions.AuthenticationFailed("Malformed API token.")
        token = (
            ApiToken.objects.active()
            .select_related("user")
            .filter(digest=ApiToken.digest_of(secret))
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        now = timezone.now()
        if token.last_used is None or now - token.last_used > LAST_USED_GRANULARITY:
            ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Names the token scheme in the OpenAPI schema (``/api/schema/``), so
    that the API's documentation says how programs authenticate."""

    target_class = BearerTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (lg_...), made on the account page.",
        }
