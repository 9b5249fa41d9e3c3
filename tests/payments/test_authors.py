"""An author reads their own lessons without buying them: on the lesson
page, through the API with their token, and on the path page, whose bundle
leaves them out."""

import time
from decimal import Decimal
from http import HTTPStatus

import pytest

from accounts.models import User
from accounts.reauth import SESSION_KEY
from accounts.services import token_create
from payments.models import Purchase, Transfer
from tests.lessons.factories import EdgeFactory, LessonFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def author() -> User:
    return User.objects.create(username="Gina", role=User.Role.INSTRUCTOR)


@pytest.fixture
def written(author):
    return LessonFactory(
        slug="written",
        author=author,
        gated=True,
        price=Decimal("0.005"),
        body="The author's own words.\n",
    )


@pytest.fixture
def signed_in(client, author):
    client.force_login(author)
    session = client.session
    session[SESSION_KEY] = time.time()
    session.save()
    return client


def nothing_charged() -> bool:
    return (
        not Purchase.objects.exists()
        and not Transfer.objects.filter(kind=Transfer.Kind.SETTLEMENT).exists()
    )


def test_the_author_reads_their_lesson_on_its_page(signed_in, written):
    response = signed_in.get(f"/lessons/{written.slug}/")
    page = response.content.decode()

    assert "The author&#x27;s own words." in page or "The author's own words." in page
    assert "Buy for" not in page
    assert "You wrote this lesson" in page
    assert response["Cache-Control"] == "private, no-store"


def test_other_accounts_still_see_the_paywall(client, written):
    client.force_login(User.objects.create(username="Linus"))

    page = client.get(f"/lessons/{written.slug}/").content.decode()

    assert "Buy for 0.005 AIN" in page
    assert "own words" not in page


def test_the_author_reads_it_through_the_api_with_their_token(client, author, written):
    _, secret = token_create(user=author, name="script")

    response = client.get(
        f"/api/lessons/{written.slug}/content",
        headers={"Authorization": f"Bearer {secret}"},
    )

    assert response.status_code == HTTPStatus.OK
    assert response.json()["markdown"] == written.body
    assert nothing_charged()


def test_pressing_buy_on_ones_own_lesson_charges_nothing(signed_in, written):
    signed_in.post(f"/lessons/{written.slug}/buy", {"price": "0.005 AIN"})

    assert nothing_charged()


def test_the_path_bundle_leaves_out_the_authors_lessons(signed_in, author, written):
    goal = LessonFactory(
        slug="goal", title="Goal", gated=True, price=Decimal("0.002"), depth=5
    )
    EdgeFactory(source=goal, target=written)

    page = signed_in.get(f"/lessons/{goal.slug}/path/").content.decode()

    assert "Buy the path for 0.002 AIN" in page
