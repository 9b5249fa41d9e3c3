from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured

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
