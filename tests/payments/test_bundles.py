"""A learning path bought as one bundle: one payment for the path's gated
lessons that the buyer does not own yet, through the API and from the path
page."""

import time
from decimal import Decimal
from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from accounts.reauth import SESSION_KEY
from accounts.services import token_create
from payments.models import AccountWallet, Purchase, Transfer
from payments.selectors import balance_of
from tests.lessons.factories import EdgeFactory, LessonFactory
from tests.payments.factories import ONE_AIN, PRICE, header_of, offer_of, payment_for

pytestmark = pytest.mark.django_db

SECOND_PRICE = 2 * 10**15  # 0.002 AIN


@pytest.fixture
def path():
    return path_made()


def path_made():
    """Basics (free) and Middle (0.002 AIN) come before Goal (0.005 AIN)."""
    basics = LessonFactory(slug="basics", title="Basics", depth=1)
    middle = LessonFactory(
        slug="middle", title="Middle", depth=2, price=Decimal("0.002"), gated=True
    )
    goal = LessonFactory(slug="goal", title="Goal", depth=3, priced=True)
    EdgeFactory(source=middle, target=basics)
    EdgeFactory(source=goal, target=middle)
    return basics, middle, goal


def bundle_url(lesson) -> str:
    return f"/api/lessons/{lesson.slug}/path/bundle"


def content_url(lesson) -> str:
    return f"/api/lessons/{lesson.slug}/content"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_the_bundle_costs_the_gated_lessons_of_the_path(client, path):
    _, _, goal = path

    response = client.get(bundle_url(goal))

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    offer = offer_of(response)
    assert offer.accepts[0].amount == str(PRICE + SECOND_PRICE)
    assert offer.resource.url == f"http://testserver{bundle_url(goal)}"
    assert "the path to “Goal” costs 0.007 AIN" in response.json()["error"]
    assert "lessons" not in response.json()


def test_one_payment_buys_every_lesson_of_the_path(client, path, payer, token):
    _basics, _middle, goal = path
    payment = payment_for(payer, offer_of(client.get(bundle_url(goal))))

    response = client.get(
        bundle_url(goal), headers={"PAYMENT-SIGNATURE": header_of(payment)}
    )

    assert response.status_code == HTTPStatus.OK, response.content
    assert [lesson["slug"] for lesson in response.json()["lessons"]] == [
        "basics",
        "middle",
        "goal",
    ]
    assert response.json()["lessons"][2]["markdown"] == goal.body
    assert "PAYMENT-RESPONSE" in response
    assert balance_of(token=token, address=payer.address) == (
        ONE_AIN - PRICE - SECOND_PRICE
    )
    # One settlement, a purchase line per gated lesson at its own price.
    assert Transfer.objects.filter(kind=Transfer.Kind.SETTLEMENT).count() == 1
    lines = {p.lesson.slug: p.units for p in Purchase.objects.all()}
    assert lines == {"middle": SECOND_PRICE, "goal": PRICE}
    audit = StringIO()
    call_command("ledger_audit", stdout=audit)
    assert "The ledger is sound." in audit.getvalue()


def test_the_receipt_lists_each_lesson_of_the_bundle(client, path, payer):
    _, _, goal = path
    payment = payment_for(payer, offer_of(client.get(bundle_url(goal))))
    client.get(bundle_url(goal), headers={"PAYMENT-SIGNATURE": header_of(payment)})
    transaction = Purchase.objects.first().transaction

    receipt = client.get(f"/api/purchases/{transaction}").json()
    page = client.get(f"/sales/receipts/{transaction}/")

    assert [line["slug"] for line in receipt["lessons"]] == ["middle", "goal"]
    assert receipt["amount"] == str(PRICE + SECOND_PRICE)
    assert "lesson" not in receipt
    assert page.status_code == HTTPStatus.OK
    assert b"2 lessons in one payment" in page.content


def test_an_account_pays_only_for_what_it_does_not_own(client, path, payer, token):
    _, middle, goal = path
    learner = User.objects.create(username="Ada")
    _, secret = token_create(user=learner, name="script")
    bought = payment_for(payer, offer_of(client.get(content_url(middle))))
    client.get(
        content_url(middle),
        headers={**bearer(secret), "PAYMENT-SIGNATURE": header_of(bought)},
    )

    offer = offer_of(client.get(bundle_url(goal), headers=bearer(secret)))
    assert offer.accepts[0].amount == str(PRICE)
    payment = payment_for(payer, offer)
    response = client.get(
        bundle_url(goal),
        headers={**bearer(secret), "PAYMENT-SIGNATURE": header_of(payment)},
    )

    assert response.status_code == HTTPStatus.OK, response.content
    assert set(
        Purchase.objects.filter(account=learner).values_list("lesson__slug", flat=True)
    ) == {"middle", "goal"}
    # Owned now: the bundle is served without another payment.
    again = client.get(bundle_url(goal), headers=bearer(secret))
    assert again.status_code == HTTPStatus.OK
    assert "no-store" in again["Cache-Control"]
    assert balance_of(token=token, address=payer.address) == (
        ONE_AIN - PRICE - SECOND_PRICE
    )


def test_a_bundle_payment_is_refused_once_its_price_changed(client, path, payer, token):
    """A payment signed for the whole path no longer matches after the
    account bought one of its lessons: nothing is charged twice."""
    _, middle, goal = path
    learner = User.objects.create(username="Ada")
    _, secret = token_create(user=learner, name="script")
    whole = payment_for(
        payer, offer_of(client.get(bundle_url(goal), headers=bearer(secret)))
    )
    single = payment_for(payer, offer_of(client.get(content_url(middle))))
    client.get(
        content_url(middle),
        headers={**bearer(secret), "PAYMENT-SIGNATURE": header_of(single)},
    )

    response = client.get(
        bundle_url(goal),
        headers={**bearer(secret), "PAYMENT-SIGNATURE": header_of(whole)},
    )

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert "lessons" not in response.json()
    assert balance_of(token=token, address=payer.address) == ONE_AIN - SECOND_PRICE


def test_a_bundle_payment_does_not_buy_a_lesson_and_back(client, path, payer, token):
    _, _, goal = path
    for_bundle = payment_for(payer, offer_of(client.get(bundle_url(goal))))
    for_goal = payment_for(payer, offer_of(client.get(content_url(goal))))

    on_lesson = client.get(
        content_url(goal), headers={"PAYMENT-SIGNATURE": header_of(for_bundle)}
    )
    on_bundle = client.get(
        bundle_url(goal), headers={"PAYMENT-SIGNATURE": header_of(for_goal)}
    )

    assert on_lesson.status_code == on_bundle.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert balance_of(token=token, address=payer.address) == ONE_AIN
    assert not Purchase.objects.exists()


def test_a_path_with_nothing_for_sale_is_free(client):
    first = LessonFactory(slug="first")
    second = LessonFactory(slug="second")
    EdgeFactory(source=second, target=first)

    response = client.get(bundle_url(second))

    assert response.status_code == HTTPStatus.OK
    assert len(response.json()["lessons"]) == 2


def test_the_bundle_is_json_only_and_head_is_gated(client, path):
    _, _, goal = path

    assert client.get(
        bundle_url(goal), headers={"Accept": "text/html"}
    ).status_code == (HTTPStatus.NOT_ACCEPTABLE)
    head = client.head(bundle_url(goal))
    assert head.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert head.content == b""
    assert client.get("/api/lessons/nowhere/path/bundle").status_code == 404


# From the path page


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    session = client.session
    session[SESSION_KEY] = time.time()
    session.save()
    return client


def test_a_learner_buys_the_path_from_its_page(client, path, token):
    _, _middle, goal = path
    learner = User.objects.create(username="Ada")
    buyer = signed_in(client, learner)
    page = buyer.get(f"/lessons/{goal.slug}/path/")
    assert b"Buy the path for 0.007 AIN" in page.content

    response = buyer.post(
        f"/lessons/{goal.slug}/path/buy", {"price": "0.007 AIN"}, follow=True
    )

    assert b"You bought 2 lessons of this path for 0.007 AIN" in response.content
    assert Purchase.objects.filter(account=learner).count() == 2
    wallet = AccountWallet.objects.get(account=learner)
    spent = balance_of(token=token, address=wallet.address)
    assert b"Every lesson of this path that is for sale is yours." in response.content

    again = buyer.post(
        f"/lessons/{goal.slug}/path/buy", {"price": "0.007 AIN"}, follow=True
    )

    assert b"nothing more was charged" in again.content
    assert b'<a href="/accounts/">your account page</a>' in again.content
    assert balance_of(token=token, address=wallet.address) == spent
    assert Purchase.objects.count() == 2


def test_the_path_page_prices_what_the_learner_does_not_own(client, path):
    _, middle, goal = path
    learner = User.objects.create(username="Ada")
    buyer = signed_in(client, learner)
    buyer.post(f"/lessons/{middle.slug}/buy", {"price": middle.price_display})

    page = buyer.get(f"/lessons/{goal.slug}/path/")

    assert b"Buy the path for 0.005 AIN" in page.content
    assert b"yours" in page.content


def test_a_path_bought_in_part_since_its_page_was_shown_is_not_charged(
    client, path, token
):
    _, middle, goal = path
    learner = User.objects.create(username="Ada")
    buyer = signed_in(client, learner)
    page = buyer.get(f"/lessons/{goal.slug}/path/")
    assert b"Buy the path for 0.007 AIN" in page.content
    # Meanwhile, in another tab:
    buyer.post(f"/lessons/{middle.slug}/buy", {"price": middle.price_display})
    wallet = AccountWallet.objects.get(account=learner)
    held = balance_of(token=token, address=wallet.address)

    response = buyer.post(
        f"/lessons/{goal.slug}/path/buy", {"price": "0.007 AIN"}, follow=True
    )

    assert b"costs 0.005 AIN now, not the 0.007 AIN your page showed" in (
        response.content
    )
    assert b"Buy the path for 0.005 AIN" in response.content
    assert balance_of(token=token, address=wallet.address) == held
    assert not Purchase.objects.filter(lesson=goal).exists()


def test_buying_the_path_needs_a_fresh_passkey(client, path):
    _, _, goal = path
    client.force_login(User.objects.create(username="Ada"))

    response = client.post(f"/lessons/{goal.slug}/path/buy")

    assert response.status_code == HTTPStatus.FOUND
    assert "/accounts/" in response["Location"]
    assert not Purchase.objects.exists()
