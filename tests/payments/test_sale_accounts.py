"""Who a sale pays and whom it is recorded for: the author's wallet for a
lesson sold on its own, the account of the API token a program sends, and
no charge when the sale cannot be recorded."""

from http import HTTPStatus

import pytest
from django.db import IntegrityError
from django.test import Client

from accounts.models import User
from accounts.services import token_create
from payments import gate
from payments.models import Purchase, Transfer
from payments.selectors import balance_of
from payments.services import wallet_for
from tests.payments.factories import ONE_AIN, PRICE, header_of, offer_of, payment_for

pytestmark = pytest.mark.django_db


def content_url(lesson) -> str:
    return f"/api/lessons/{lesson.slug}/content"


def test_a_lesson_pays_its_authors_wallet(client, lesson, payer, token):
    author = User.objects.create(username="Author", role=User.Role.INSTRUCTOR)
    wallet = wallet_for(author)
    lesson.author = author
    lesson.save()
    held = balance_of(token=token, address=wallet.address)

    offer = offer_of(client.get(content_url(lesson)))
    assert offer.accepts[0].pay_to == wallet.address
    response = client.get(
        content_url(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert response.status_code == HTTPStatus.OK
    assert balance_of(token=token, address=wallet.address) == held + PRICE
    assert Purchase.objects.get().payee == wallet.address


def test_a_lesson_whose_author_has_no_wallet_pays_the_site(client, lesson, site_wallet):
    lesson.author = User.objects.create(username="Author", role=User.Role.INSTRUCTOR)
    lesson.save()

    offer = offer_of(client.get(content_url(lesson)))

    assert offer.accepts[0].pay_to.lower() == site_wallet.lower()


def test_a_program_with_a_token_buys_for_its_account(client, lesson, payer, token):
    learner = User.objects.create(username="Ada")
    _, secret = token_create(user=learner, name="script")
    headers = {"Authorization": f"Bearer {secret}"}
    offer = offer_of(client.get(content_url(lesson), headers=headers))

    paid = Client().get(
        content_url(lesson),
        headers={**headers, "PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )
    again = Client().get(content_url(lesson), headers=headers)

    assert paid.status_code == again.status_code == HTTPStatus.OK
    assert Purchase.objects.get().account == learner
    assert "PAYMENT-RESPONSE" not in again
    assert balance_of(token=token, address=payer.address) == ONE_AIN - PRICE


def test_a_sale_that_cannot_be_recorded_is_not_charged(
    client, lesson, payer, token, monkeypatch
):
    def broken(**fields):
        raise IntegrityError("the purchase table refused the row")

    monkeypatch.setattr(gate, "purchase_record", broken)
    offer = offer_of(client.get(content_url(lesson)))

    response = client.get(
        content_url(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(payer, offer))},
    )

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert response.json()["reason"] == "sale_not_recorded"
    assert "markdown" not in response.json()
    # The settlement went back with the transaction.
    assert balance_of(token=token, address=payer.address) == ONE_AIN
    assert not Transfer.objects.filter(kind=Transfer.Kind.SETTLEMENT).exists()
