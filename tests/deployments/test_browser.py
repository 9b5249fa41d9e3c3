"""An instructor runs the flagship example from its lesson page in a real
browser, watches the steps, opens the service, reads its logs, rolls it
back and tears it down from the run page (tests/browser.py)."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from deployments import services
from deployments.models import Deployment, Run, Step
from tests.deployments.conftest import example_write
from tests.deployments.runs import FLAGSHIP
from tests.lessons.factories import LessonFactory

pytestmark = pytest.mark.browser
STEP_SECONDS = 60_000
RUN_PAGE = re.compile(r"/deployments/runs/\d+/$")


def instructor_signed_up(browser, name: str = "Grace") -> User:
    browser.add_authenticator()
    browser.sign_up(name)
    User.objects.filter(username=name).update(role=User.Role.INSTRUCTOR)
    return User.objects.get(username=name)


def test_an_instructor_runs_the_flagship_example_from_its_lesson_page(browser, worker):
    LessonFactory.create(
        slug=FLAGSHIP, title="Shipping containers without Docker-in-Docker"
    )
    instructor_signed_up(browser)
    page = browser.open(f"/lessons/{FLAGSHIP}/")

    page.get_by_role("button", name="Run this example").click()

    expect(page).to_have_url(RUN_PAGE)
    first_run = page.url
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

    page.get_by_role("button", name="Show its logs").click()
    expect(page.get_by_label("The service's logs")).not_to_contain_text(
        "Reading", timeout=STEP_SECONDS
    )
    expect(page.get_by_label("The service's logs")).to_contain_text("url:/health")

    page.get_by_role("button", name="Roll back").click()
    expect(page).to_have_url(RUN_PAGE)
    expect(page.locator("[data-run-status]")).to_have_text(
        "succeeded", timeout=STEP_SECONDS
    )
    assert Deployment.objects.get(name=FLAGSHIP).digest == first_digest
    expect(page.locator("[data-run-service] a")).to_be_visible()

    page.get_by_role("button", name="Tear down").click()
    expect(page.locator("[data-run-status]")).to_have_text(
        "succeeded", timeout=STEP_SECONDS
    )
    assert Deployment.objects.get(name=FLAGSHIP).status == Deployment.Status.TORN_DOWN
    expect(page.locator("[data-run-service]")).to_contain_text("is torn down")
    expect(page.get_by_role("button", name="Tear down")).to_be_hidden()

    page.goto(first_run)
    expect(page.locator("[data-run-service]")).to_contain_text(
        "has been torn down since"
    )
    assert browser.errors == []


def test_a_failed_run_says_which_step_failed_and_shows_no_secret(
    browser, worker, examples
):
    slug = example_write(
        examples,
        "leaky-web",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY www /www\n"
        "RUN --mount=type=secret,id=build_token cp /run/secrets/build_token /www/t\n"
        'USER 65534:65534\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n',
        "port: 8080\nhealth_path: /health\nbuild_secrets: [build_token]\n",
    )
    instructor_signed_up(browser)
    page = browser.open("/deployments/")

    page.locator(f"form[action$='/examples/{slug}/run']").get_by_role(
        "button", name="Run this example"
    ).click()

    expect(page.locator("[data-run-status]")).to_have_text(
        "failed", timeout=STEP_SECONDS
    )
    expect(page.locator("[data-run-error]")).to_contain_text(
        "The leak gate step failed: The leak gate found a secret value"
    )
    expect(page.locator('[data-step="push"] [data-step-status]')).to_have_text(
        "skipped"
    )
    value = services.secret_values(example=slug)["build_token"]
    assert value not in page.content()
    assert browser.errors == []


def test_the_run_page_says_when_no_worker_takes_the_run_or_it_stops_following_it(
    browser, deployments_home
):
    account = instructor_signed_up(browser)
    run = services.run_start(
        account=account, kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP
    )
    page = browser.open(f"/deployments/runs/{run.pk}/")
    expect(page.locator("[data-run-status]")).to_have_text("queued")
    expect(page.locator("[data-run-waiting]")).to_contain_text(
        "No worker has taken this run yet", timeout=15_000
    )

    browser.context.clear_cookies()

    expect(page.locator("[data-run-connection]")).to_contain_text(
        "stopped following the run"
    )
    assert browser.errors == []


def test_the_image_form_checks_the_name_in_the_browser(browser, deployments_home):
    instructor_signed_up(browser)
    console = []
    browser.page.on("console", lambda message: console.append(message.text))
    page = browser.open("/deployments/")
    form = page.locator("form[action$='/images']")
    form.get_by_label("Image").fill("127.0.0.1:5000/examples/web:run-1")
    form.get_by_label("Name").fill("Web!")

    form.get_by_role("button", name="Deploy").click()

    expect(page).to_have_url(re.compile(r"/deployments/$"))
    assert form.get_by_label("Name").evaluate("field => !field.validity.valid")
    assert not Run.objects.exists()
    assert [text for text in console if "regular expression" in text] == []


def test_a_running_step_shows_a_busy_bar_until_it_reports_progress(
    browser, deployments_home
):
    account = instructor_signed_up(browser)
    run = services.run_start(
        account=account, kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP
    )
    build = run.steps.filter(name="build")
    build.update(status=Step.Status.RUNNING)
    page = browser.open(f"/deployments/runs/{run.pk}/")
    bar = page.locator('[data-step="build"] [data-step-progress]')
    expect(bar).not_to_have_attribute("value", re.compile(".*"))

    build.update(progress=42, log="STEP 3/7: RUN true\n")

    expect(bar).to_have_js_property("value", 42)
    expect(page.locator('[data-step="build"] [data-step-log]')).to_have_text(
        "STEP 3/7: RUN true\n"
    )
    assert browser.errors == []


def test_the_run_page_offers_no_action_while_the_engine_is_missing(
    browser, monkeypatch, transactional_db
):
    account = instructor_signed_up(browser)
    run = Run.objects.create(
        kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP,
        status=Run.Status.SUCCEEDED, started_by=account,
    )  # fmt: skip
    Deployment.objects.create(
        name=FLAGSHIP, example=FLAGSHIP, repository="r", digest="sha256:" + "b" * 64,
        previous_digest="sha256:" + "a" * 64, container_name="c", host_port=9,
        last_run=run, owner=account,
    )  # fmt: skip
    monkeypatch.setenv("PATH", "/nonexistent")

    page = browser.open(f"/deployments/runs/{run.pk}/")

    expect(page.locator("[data-run-service]")).to_contain_text("answers at")
    expect(page.get_by_role("alert").first).to_contain_text("cannot run")
    expect(page.get_by_role("button", name="Tear down")).to_be_hidden()
    expect(page.get_by_role("button", name="Show its logs")).to_be_hidden()
    assert browser.errors == []
