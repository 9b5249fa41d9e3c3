from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from deployments.keys import key_decode


@register()
def deployment_keys_check(**kwargs: Any) -> list[CheckMessage]:
    """Refuse to start with unreadable deployment keys, or, in production,
    with the development ones derived from SECRET_KEY. No message quotes a
    key."""
    findings: list[CheckMessage] = []
    for name in ("DEPLOYMENTS_SECRETS_KEY", "DEPLOYMENTS_SIGNING_KEY"):
        value = getattr(settings, name)
        if value:
            try:
                key_decode(value, setting=name)
            except ValueError as error:
                findings.append(Error(str(error), id="deployments.E001"))
        elif settings.PRODUCTION:
            findings.append(
                Error(
                    f"Production needs its own {name}: 32 random bytes in URL-safe "
                    "base64.",
                    id="deployments.E002",
                )
            )
    if settings.PRODUCTION and not settings.DEPLOYMENTS_REGISTRY_PASSWORD:
        findings.append(
            Error(
                "Production needs its own DEPLOYMENTS_REGISTRY_PASSWORD.",
                id="deployments.E003",
            )
        )
    return findings
