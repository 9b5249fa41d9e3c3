"""The account page shows the account's wallet and the lessons it bought."""

import time
from http import HTTPStatus

import pytest

from accounts.models import User
from accounts.reauth import SESSION_KEY
from payments.models import AccountWallet, Purchase
from payments.selectors import account_holdings
from tests.lessons.factories import LessonFactory
from tests.payments.factories import PRICE

pytestmark = pytest.mark.django_db


@pytest.fixture
def learner() -> User:
    return User.objects.create(username="Grace")


@pytest.fixture
def buyer(client, learner):
    client.force_login(learner)
    session = client.session
    session[SESSION_KEY] = time.time()
    session.save()
    return client


def test_an_account_that_never_bought_has_no_wallet_yet(buyer, learner):
    page = buyer.get("/accounts/").content.decode()

    assert "Your wallet is made the first time you buy a lesson." in page
    assert "You have not bought a lesson yet." in page
    assert not AccountWallet.objects.filter(account=learner).exists()


def test_a_purchase_shows_with_its_price_receipt_and_the_balance_left(
    buyer, learner, settings
):
    settings.WALLET_STARTING_BALANCE = "1"
    lesson = LessonFactory(gated=True, price="0.005")

    bought = buyer.post(f"/lessons/{lesson.slug}/buy", {"price": "0.005 AIN"})
    page = buyer.get("/accounts/").content.decode()

    assert bought.status_code == HTTPStatus.FOUND
    purchase = Purchase.objects.get(account=learner)
    assert purchase.units == PRICE
    assert lesson.title in page
    assert "0.005 AIN" in page
    assert f"/sales/receipts/{purchase.transaction}/" in page
    assert "0.995 AIN" in page
    assert AccountWallet.objects.get(account=learner).address in page


def test_holdings_list_only_the_accounts_own_purchases(learner, token):
    other = User.objects.create(username="Linus")
    lesson = LessonFactory(gated=True, price="0.005")
    fields = {
        "lesson": lesson,
        "payer": "0x" + "11" * 20,
        "payee": "0x" + "22" * 20,
        "amount": PRICE,
        "asset": token.address,
        "network": token.network,
    }
    mine = Purchase.objects.create(transaction="0x01", account=learner, **fields)
    Purchase.objects.create(transaction="0x02", account=other, **fields)

    holdings = account_holdings(account_id=learner.pk)

    assert holdings.purchases == [mine]
    assert holdings.wallet_address is None
    assert holdings.balance == 0


def test_a_purchase_in_another_token_is_shown_in_its_units(learner, token):
    lesson = LessonFactory(gated=True, price="0.005")
    Purchase.objects.create(
        transaction="0x03",
        account=learner,
        lesson=lesson,
        payer="0x" + "11" * 20,
        payee="0x" + "22" * 20,
        amount=2500,
        asset="0x" + "33" * 20,
        network="eip155:8453",
    )

    [(_purchase, price)] = account_holdings(account_id=learner.pk).lines

    assert price == f"2500 units of {'0x' + '33' * 20}"
