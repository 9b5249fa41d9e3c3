import math
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

# arXiv's terms of use: no more than one request every three seconds.
ARXIV_INTERVAL_FLOOR = 3


@register()
def arxiv_settings_check(**kwargs: Any) -> list[CheckMessage]:
    """Refuse to start with an arXiv address no request could reach, rather
    than report arXiv unavailable at every refresh and retry for an hour."""
    url = settings.ARXIV_API_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Error(
                f"ARXIV_API_URL must be an http(s) URL such as "
                f"https://export.arxiv.org/api/query (got {url!r}).",
                id="lessons.E001",
            )
        ]
    if parts.query or parts.fragment:
        # The client appends the search as the query string.
        return [
            Error(
                f"ARXIV_API_URL must have no query string or fragment: the "
                f"search is appended as the query (got {url!r}).",
                id="lessons.E001",
            )
        ]
    for name in ("ARXIV_TIMEOUT_SECONDS", "ARXIV_BATCH_SIZE"):
        if not 0 < getattr(settings, name) < math.inf:
            return [Error(f"{name} must be positive.", id="lessons.E001")]
    for name in (
        "ARXIV_RETRIES",
        "ARXIV_REQUEST_INTERVAL_SECONDS",
        "ARXIV_BACKOFF_SECONDS",
        "ARXIV_BACKOFF_MAX_SECONDS",
    ):
        if not 0 <= getattr(settings, name) < math.inf:
            return [Error(f"{name} must be 0 or more.", id="lessons.E001")]
    interval = settings.ARXIV_REQUEST_INTERVAL_SECONDS
    arxiv_itself = parts.hostname == "arxiv.org" or parts.hostname.endswith(
        ".arxiv.org"
    )
    if arxiv_itself and interval < ARXIV_INTERVAL_FLOOR:
        # Shorter intervals are for local stand-ins, such as the tests'.
        return [
            Error(
                f"ARXIV_REQUEST_INTERVAL_SECONDS must be at least "
                f"{ARXIV_INTERVAL_FLOOR} when asking arXiv itself, which allows "
                f"one request every three seconds (got {interval}).",
                id="lessons.E001",
            )
        ]
    return []
