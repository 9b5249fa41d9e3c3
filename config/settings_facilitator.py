"""Settings of the facilitator served as its own process: the site's
settings, the same database and ledger, answering only the facilitator's
API (config/urls_facilitator.py)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "config.urls_facilitator"
