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
