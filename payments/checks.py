from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured

from payments.offers import offers_configured, site_pay_to
from payments.token import token_configured


@register()
def token_settings_check(**kwargs: Any) -> list[CheckMessage]:
    """Refuse to start with X402_* settings the facilitator cannot use,
    rather than fail at the first payment."""
    try:
        token_configured()
    except ImproperlyConfigured as error:
        return [Error(str(error), id="payments.E001")]
    return []


@register()
def sale_settings_check(**kwargs: Any) -> list[CheckMessage]:
    """Refuse to start with offers that cannot sell, or, in production, with
    sales paid to the development wallet, whose key nobody holds."""
    try:
        pay_to = site_pay_to()
        offers_configured()
    except ImproperlyConfigured as error:
        return [Error(str(error), id="payments.E002")]
    for name in ("X402_MAX_TIMEOUT_SECONDS", "X402_FACILITATOR_TIMEOUT_SECONDS"):
        if getattr(settings, name) <= 0:
            return [Error(f"{name} must be positive.", id="payments.E002")]
    # A negative skew shortens every window the facilitator allows below
    # the offer's own: the official client signs validBefore now plus
    # maxTimeoutSeconds, so every payment would be refused as valid too
    # long.
    if settings.X402_CLOCK_SKEW_SECONDS < 0:
        return [
            Error(
                "X402_CLOCK_SKEW_SECONDS must not be negative; 0 allows no skew.",
                id="payments.E002",
            )
        ]
    development = settings.X402_DEVELOPMENT_PAY_TO.lower()
    if settings.PRODUCTION and pay_to.lower() == development:
        return [
            Error(
                "X402_SITE_PAY_TO is the development address, which nobody holds "
                "a key for; set the site's own wallet.",
                id="payments.E003",
            )
        ]
    return []
