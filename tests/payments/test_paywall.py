"""The 402 answer as a person's browser sees it: a page saying what is
sold and where to buy it, with the same offer in its header."""

from http import HTTPStatus

import pytest

from tests.lessons.factories import EdgeFactory, LessonFactory
from tests.payments.factories import offer_of

pytestmark = pytest.mark.django_db

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}


def test_a_browser_gets_the_paywall_page(client, lesson):
    response = client.get(f"/api/lessons/{lesson.slug}/content", headers=BROWSER)

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert response["Content-Type"].startswith("text/html")
    assert offer_of(response).accepts[0].amount == "5000000000000000"
    page = response.content.decode()
    assert "for <strong>0.005 AIN</strong>" in page
    assert "data-refusal" not in page
    assert f'href="/lessons/{lesson.slug}/"' in page
    assert "The paid part." not in page
    assert response["Cache-Control"] == "no-store"


def test_a_title_with_quotes_is_named_as_written(client):
    lesson = LessonFactory(title='Don\'t say "root"', priced=True)

    page = client.get(f"/api/lessons/{lesson.slug}/content", headers=BROWSER)
    program = client.get(f"/api/lessons/{lesson.slug}/content")

    assert "The lesson “Don&#x27;t say &quot;root&quot;” is sold" in (
        page.content.decode()
    )
    assert program.json()["error"] == (
        'Payment required: the lesson “Don\'t say "root"” costs 0.005 AIN.'
    )


def test_a_browser_sending_a_refused_payment_is_told_why(client, lesson):
    response = client.get(
        f"/api/lessons/{lesson.slug}/content",
        headers={**BROWSER, "PAYMENT-SIGNATURE": "not base64!"},
    )

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    page = response.content.decode()
    assert "data-refusal" in page
    assert "base64" in page
    assert "The paid part." not in page


def test_a_program_asking_for_html_still_gets_the_version_1_body(client, lesson):
    response = client.get(
        f"/api/lessons/{lesson.slug}/content",
        headers={"Accept": "text/html", "User-Agent": "python-httpx/0.29"},
    )

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert response.json()["x402Version"] == 1


def test_the_bundle_paywall_sends_to_the_path_page(client):
    first = LessonFactory(slug="first", priced=True)
    goal = LessonFactory(slug="goal")
    EdgeFactory(source=goal, target=first)

    response = client.get("/api/lessons/goal/path/bundle", headers=BROWSER)

    # The bundle is JSON only; a browser asking for HTML first still
    # accepts it through */*.
    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert 'href="/lessons/goal/path/"' in response.content.decode()
