"""Rate limits on passkey ceremonies, per client address.

Asking for options is cheap and happens on every sign-in page view (the
browser's passkey autofill asks at once), so it has a generous limit of
its own; answers, where signatures are checked, have a tighter one. Each
limit is shared by all the endpoints of its kind.
"""

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.decorators import ratelimit


def _options_rate(group: str, request: HttpRequest) -> str:
    return str(settings.ACCOUNTS_OPTIONS_RATE)


def _answers_rate(group: str, request: HttpRequest) -> str:
    return str(settings.ACCOUNTS_CEREMONY_RATE)


options_limited = ratelimit(
    group="passkey-options", key="ip", rate=_options_rate, method="POST", block=True
)
answers_limited = ratelimit(
    group="passkey-answers", key="ip", rate=_answers_rate, method="POST", block=True
)
