"""Passkeys in a real browser: Debian's Chromium driven by Playwright, with
a virtual authenticator over the Chrome DevTools Protocol, against a live
server on ``localhost`` (WebAuthn refuses 127.0.0.1 as an RP id)."""

import os
import re
import time
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

from accounts.models import ApiToken, User

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

pytestmark = pytest.mark.browser


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


def test_sign_up_sign_out_and_sign_in_again(browser):
    browser.add_authenticator()

    browser.sign_up("Ada")
    expect(browser.page.get_by_role("textbox", name="Passkey name")).to_have_value(
        "Passkey 1"
    )
    browser.sign_out()
    page = browser.open("/lessons/")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("link", name="Ada")).to_be_visible()
    assert User.objects.get(username="Ada").passkeys.get().last_used is not None
    assert browser.errors == []


def test_sign_in_page_button_works_beside_passkey_autofill(browser):
    browser.add_authenticator()
    browser.sign_up("Ada")
    browser.sign_out()

    page = browser.open("/accounts/signin/")
    page.get_by_role("button", name="Sign in with a passkey").click()

    expect(page.get_by_role("link", name="Ada")).to_be_visible()


def test_adding_a_second_passkey(browser):
    first = browser.add_authenticator()
    browser.sign_up("Ada")
    browser.remove_authenticator(first)
    browser.add_authenticator()

    page = browser.page
    page.get_by_placeholder("Name, e.g. “Phone”").fill("Second key")
    page.get_by_role("button", name="Add a passkey").click()

    expect(page.get_by_role("textbox", name="Passkey name").nth(1)).to_have_value(
        "Second key"
    )
    assert User.objects.get(username="Ada").passkeys.count() == 2


def test_registering_the_same_authenticator_twice_is_refused(browser):
    browser.add_authenticator()
    browser.sign_up("Ada")

    browser.page.get_by_role("button", name="Add a passkey").click()

    expect(browser.page.get_by_text("already registered")).to_be_visible()
    assert User.objects.get(username="Ada").passkeys.count() == 1


def test_sensitive_action_after_the_window_asks_for_the_passkey_again(
    browser, settings
):
    browser.add_authenticator()
    browser.sign_up("Ada")
    settings.ACCOUNTS_REAUTH_SECONDS = 1
    time.sleep(1.5)

    page = browser.page
    page.get_by_placeholder("Token name").fill("laptop script")
    page.get_by_role("button", name="Create a token").click()
    expect(page).to_have_url(re.compile(r"/accounts/reauthenticate/"))
    assert not ApiToken.objects.exists()
    page.get_by_role("button", name="Confirm with my passkey").click()
    expect(page).to_have_url(re.compile(r"/accounts/$"))
    page.get_by_placeholder("Token name").fill("laptop script")
    page.get_by_role("button", name="Create a token").click()

    expect(page.get_by_text("shown only this once")).to_be_visible()
    assert ApiToken.objects.get().name == "laptop script"


def test_browser_without_webauthn_is_told_so_and_nothing_breaks(browser):
    browser.context.add_init_script("delete window.PublicKeyCredential;")

    page = browser.open("/accounts/signin/")

    expect(
        page.get_by_text("Passkeys not supported in this browser").first
    ).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert browser.errors == []
    browser.open("/")
    expect(page.get_by_role("heading", name="Lessons")).to_be_visible()


def test_wrong_host_name_says_where_passkeys_work(browser):
    page = browser.page
    page.goto(browser.site.replace("localhost", "127.0.0.1") + "/")

    link = page.get_by_role("link", name="localhost")
    expect(link).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_be_hidden()
    assert link.get_attribute("href") == browser.site + "/"
