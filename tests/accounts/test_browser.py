"""Passkeys in a real browser (tests/browser.py)."""

import re
import time

import pytest
from playwright.sync_api import expect

from accounts.models import ApiToken, User

pytestmark = pytest.mark.browser


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
    authenticator = browser.add_authenticator()
    browser.sign_up("Ada")
    browser.sign_out()
    # A virtual authenticator that simulates the user's presence answers
    # the page's autofill request at once, as if a passkey had been picked
    # from the list, and the page signs in before the button is pressed.
    # Without presence the autofill request stays pending, as when the user
    # ignores the list; presence comes back only once the button has asked
    # for its own options, so only the button's request can be answered.
    presence(browser, authenticator, on=False)
    asked: list[str] = []

    def options(route):
        asked.append(route.request.url)
        if len(asked) == 2:
            presence(browser, authenticator, on=True)
        route.continue_()

    browser.page.route("**/accounts/signin/options", options)

    with browser.page.expect_request("**/accounts/signin/options"):
        page = browser.open("/accounts/signin/")  # the autofill asks first
    page.get_by_role("button", name="Sign in with a passkey").click()

    expect(page.get_by_role("link", name="Ada")).to_be_visible()
    assert len(asked) == 2
    assert browser.errors == []


def presence(browser, authenticator: str, *, on: bool) -> None:
    browser.cdp.send(
        "WebAuthn.setAutomaticPresenceSimulation",
        {"authenticatorId": authenticator, "enabled": on},
    )


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


def test_the_account_page_fits_a_phone_screen(browser):
    browser.add_authenticator()
    browser.sign_up("Ada")
    page = browser.open("/accounts/")
    page.set_viewport_size({"width": 360, "height": 740})

    expect(page.get_by_role("heading", name="Passkeys")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    assert browser.errors == []
