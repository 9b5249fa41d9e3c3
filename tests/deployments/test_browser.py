"""An instructor runs the flagship example from its lesson page in a real
browser, watches the steps, opens the service, rolls it back and tears it
down (tests/browser.py)."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from deployments.models import Deployment
from tests.deployments.runs import FLAGSHIP
from tests.lessons.factories import LessonFactory

pytestmark = pytest.mark.browser
STEP_SECONDS = 60_000


def test_an_instructor_runs_the_flagship_example_from_its_lesson_page(browser, worker):
    LessonFactory.create(
        slug=FLAGSHIP, title="Shipping containers without Docker-in-Docker"
    )
    browser.add_authenticator()
    browser.sign_up("Grace")
    User.objects.filter(username="Grace").update(role=User.Role.INSTRUCTOR)
    page = browser.open(f"/lessons/{FLAGSHIP}/")

    page.get_by_role("button", name="Run this example").click()

    expect(page).to_have_url(re.compile(r"/deployments/runs/\d+/$"))
    verify = page.locator('[data-step="verify"]')
    expect(verify.locator("[data-step-status]")).to_have_text(
        "succeeded", timeout=STEP_SECONDS
    )
    expect(page.locator('[data-step="leak gate"] [data-step-proof]')).to_contain_text(
        "none found"
    )
    expect(verify.locator("[data-step-proof]")).to_contain_text(
        "without showing either"
    )
    service = page.locator("[data-run-service] a")
    expect(service).to_be_visible()
    address = service.get_attribute("href")

    page.goto(address)
    expect(
        page.get_by_role("heading", name="Two secrets, neither shown")
    ).to_be_visible()

    page = browser.open("/deployments/")
    page.get_by_role("button", name="Run this example").click()
    expect(page.locator("[data-run-status]")).to_have_text(
        "succeeded", timeout=STEP_SECONDS
    )
    first_digest = Deployment.objects.get(name=FLAGSHIP).previous_digest
    page = browser.open("/deployments/")
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator("[data-run-status]")).to_have_text(
        "succeeded", timeout=STEP_SECONDS
    )
    assert Deployment.objects.get(name=FLAGSHIP).digest == first_digest

    page = browser.open("/deployments/")
    page.get_by_role("button", name="Tear down").click()
    expect(page.locator("[data-run-status]")).to_have_text(
        "succeeded", timeout=STEP_SECONDS
    )
    assert Deployment.objects.get(name=FLAGSHIP).status == Deployment.Status.TORN_DOWN
    assert browser.errors == []
