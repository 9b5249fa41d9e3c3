from pathlib import Path

import pytest

# One Playwright session for every browser test (tests/browser.py).
from tests.browser import browser, playwright, site  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SHARED_INPUTS = ROOT.parent / "shared" / "inputs"


@pytest.fixture
def shared_inputs() -> Path:
    if not SHARED_INPUTS.is_dir():
        pytest.fail(f"The shared inputs are missing: {SHARED_INPUTS}")
    return SHARED_INPUTS


@pytest.fixture(autouse=True)
def empty_cache():
    """Rate limits and cached pages live in the cache; each test starts
    with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Each request closes its database connection as it ends. A live
    server's thread waiting on a client's kept-alive connection would
    otherwise still hold one when the test database is dropped, which then
    fails: the site's HTTP facilitator client keeps its connections, and
    the official x402 client leaves the connection of an offer it refused
    to pay open."""
    from django.conf import settings

    for database in settings.DATABASES.values():
        database["CONN_MAX_AGE"] = 0
