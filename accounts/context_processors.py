from typing import Any

from django.conf import settings
from django.http import HttpRequest


def passkeys(request: HttpRequest) -> dict[str, Any]:
    """What pages need to know to offer passkeys."""
    return {
        "webauthn_rp_id": settings.WEBAUTHN_RP_ID,
        "reauth_minutes": max(settings.ACCOUNTS_REAUTH_SECONDS // 60, 1),
    }
