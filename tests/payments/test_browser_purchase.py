"""Buying a lesson from its page in a real browser (tests/browser.py)."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from lessons.models import Lesson
from payments.models import Purchase
from tests.lessons.factories import LessonFactory

FLAGSHIP = "shipping-containers-without-dind"

pytestmark = pytest.mark.browser


@pytest.fixture
def flagship(transactional_db: None) -> Lesson:
    """The flagship lesson; the test database starts empty, so it is made
    here."""
    return LessonFactory.create(
        slug=FLAGSHIP,
        title="Shipping containers without Docker-in-Docker",
        body="## Build without a daemon\n\nThe paid part of the lesson.\n",
        priced=True,
    )


def test_a_new_account_buys_the_flagship_lesson_and_reads_it(browser, flagship):
    browser.add_authenticator()
    page, site = browser.page, browser.site
    page.goto(site + "/accounts/signup/")
    page.get_by_label("Display name").fill("Ada")
    page.get_by_role("button", name="Create account with a passkey").click()
    expect(page).to_have_url(re.compile(r"/accounts/$"))
    page.goto(f"{site}/lessons/{FLAGSHIP}/")
    expect(page.locator(".paywall")).to_be_visible()

    page.get_by_role("button", name="Buy for 0.005 AIN").click()

    expect(page).to_have_url(f"{site}/lessons/{FLAGSHIP}/")
    expect(page.get_by_text("The paid part of the lesson.")).to_be_visible()
    expect(page.get_by_role("link", name="Receipt").first).to_be_visible()
    expect(page.locator(".paywall")).to_have_count(0)
    purchase = Purchase.objects.get()
    assert purchase.account == User.objects.get(username="Ada")
    assert purchase.lesson == flagship


def test_the_receipt_and_the_wallet_fit_a_phone_screen(browser, flagship):
    browser.add_authenticator()
    browser.sign_up("Ada")
    page = browser.open(f"/lessons/{FLAGSHIP}/")
    page.get_by_role("button", name="Buy for 0.005 AIN").click()
    page.set_viewport_size({"width": 360, "height": 740})
    page_width = "() => document.documentElement.scrollWidth"

    page.get_by_role("link", name="Receipt").first.click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    receipt_width = page.evaluate(page_width)
    page.goto(browser.site + "/accounts/")
    wallet = page.locator("[data-wallet-address]").bounding_box()

    assert receipt_width <= 360
    assert wallet is not None and wallet["x"] + wallet["width"] <= 360
    assert browser.errors == []


def test_a_triple_click_charges_once_and_says_what_was_paid(browser, flagship):
    browser.add_authenticator()
    browser.sign_up("Ada")
    page = browser.open(f"/lessons/{FLAGSHIP}/")
    box = page.get_by_role("button", name="Buy for 0.005 AIN").bounding_box()
    assert box is not None

    for _ in range(3):
        page.mouse.click(box["x"] + 5, box["y"] + 5)

    expect(page.locator(".owned")).to_be_visible()
    told = page.locator(".messages").inner_text()
    assert "for 0.005 AIN" in told
    assert "Receipt" in told
    assert Purchase.objects.count() == 1
    assert browser.errors == []


def test_the_buy_button_sends_its_form_once(browser, flagship):
    browser.add_authenticator()
    browser.sign_up("Ada")
    page = browser.open(f"/lessons/{FLAGSHIP}/")
    box = page.get_by_role("button", name="Buy for 0.005 AIN").bounding_box()
    assert box is not None
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    for _ in range(3):
        page.mouse.click(box["x"] + 5, box["y"] + 5)

    expect(page.locator(".owned")).to_be_visible()
    assert posts == [f"{browser.site}/lessons/{FLAGSHIP}/buy"]
    expect(page.locator(".messages")).to_contain_text("You bought")
    assert browser.errors == []
