"""Real-browser testing: Debian's Chromium driven by Playwright, with a
virtual passkey authenticator over the Chrome DevTools Protocol, against a
live server on ``localhost`` (WebAuthn refuses 127.0.0.1 as an RP id).

The fixtures are registered in tests/conftest.py, so that one Playwright
session serves every browser test: its sync API cannot be started twice.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

# Playwright's sync API runs an event loop in this thread; Django's ORM in
# the test body must be told that is fine.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}; run `make provision`.")
    with sync_playwright() as instance:
        yield instance


@pytest.fixture
def site(live_server: Any, settings: Any) -> str:
    url = live_server.url.replace("127.0.0.1", "localhost")
    assert url.startswith("http://localhost:"), url
    settings.WEBAUTHN_ORIGINS = [url]
    return str(url)


class Browser:
    def __init__(self, context: BrowserContext, site: str) -> None:
        self.context = context
        self.site = site
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.cdp = context.new_cdp_session(self.page)
        self.cdp.send("WebAuthn.enable")

    def add_authenticator(self) -> str:
        answer = self.cdp.send(
            "WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR}
        )
        return str(answer["authenticatorId"])

    def remove_authenticator(self, authenticator_id: str) -> None:
        self.cdp.send(
            "WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator_id}
        )

    def open(self, path: str) -> Page:
        self.page.goto(self.site + path)
        return self.page

    def sign_up(self, name: str) -> None:
        page = self.open("/accounts/signup/")
        page.get_by_label("Display name").fill(name)
        page.get_by_role("button", name="Create account with a passkey").click()
        expect(page).to_have_url(re.compile(r"/accounts/$"))

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        expect(self.page.get_by_role("button", name="Sign in")).to_be_visible()


@pytest.fixture
def browser(playwright: Playwright, site: str, tmp_path: Path) -> Iterator[Browser]:
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
    )
    try:
        yield Browser(context, site)
    finally:
        context.close()
