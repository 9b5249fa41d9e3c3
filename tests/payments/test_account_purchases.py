"""Signed-in learners buying a gated lesson from its page with their
account's own wallet, and reading it afterwards on the page and through the
API."""

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.core.checks import Error
from django.db import connection, connections
from django.test import Client

from accounts.models import User
from accounts.reauth import SESSION_KEY
from accounts.services import token_create
from payments import wallets
from payments.models import AccountWallet, Purchase, Transfer
from payments.selectors import balance_of
from payments.services import wallet_for
from tests.lessons.factories import LessonFactory
from tests.payments.factories import (
    ONE_AIN,
    PRICE,
    account_new,
    header_of,
    offer_of,
    payment_for,
)

BODY_TEXT = "The paid part."


def buy_url(lesson) -> str:
    return f"/lessons/{lesson.slug}/buy"


def shown(lesson) -> dict[str, str]:
    """The form the lesson page's buy button sends: the price it names."""
    return {"price": lesson.price_display}


def page_url(lesson) -> str:
    return f"/lessons/{lesson.slug}/"


def content_url(lesson) -> str:
    return f"/api/lessons/{lesson.slug}/content"


def signed_in(client: Client, user: User, *, fresh: bool = True) -> Client:
    """``client`` signed in as ``user``, with a passkey confirmation just
    made unless ``fresh`` is False."""
    client.force_login(user)
    if fresh:
        session = client.session
        session[SESSION_KEY] = time.time()
        session.save()
    return client


def wallet_balance(user: User, token) -> int:
    return balance_of(
        token=token, address=AccountWallet.objects.get(account=user).address
    )


@pytest.fixture
def learner(db) -> User:
    return User.objects.create(username="Ada")


@pytest.fixture
def buyer(client, learner) -> Client:
    return signed_in(client, learner)


# Wallets


@pytest.mark.django_db
def test_a_new_wallet_starts_with_the_starting_balance_in_development(
    learner, token, settings
):
    settings.WALLET_STARTING_BALANCE = "1"

    wallet = wallet_for(learner)

    assert balance_of(token=token, address=wallet.address) == ONE_AIN


@pytest.mark.django_db
def test_a_new_wallet_starts_empty_in_production(learner, token, settings):
    settings.PRODUCTION = True

    wallet = wallet_for(learner)

    assert balance_of(token=token, address=wallet.address) == 0
    assert not Transfer.objects.filter(payee=wallet.address).exists()


@pytest.mark.django_db
def test_an_account_has_one_wallet_funded_once(learner, token):
    first = wallet_for(learner)

    again = wallet_for(learner)

    assert again == first
    assert Transfer.objects.filter(payee=first.address).count() == 1


@pytest.mark.django_db
def test_the_private_key_is_not_stored_in_clear(learner):
    wallet = wallet_for(learner)
    private_key = wallets.wallet_signer(wallet).key

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sealed_key FROM payments_accountwallet WHERE id = %s", [wallet.pk]
        )
        [stored] = cursor.fetchone()

    stored = bytes(stored)
    assert private_key not in stored
    assert private_key.hex().encode() not in stored
    assert private_key.hex() not in stored.hex()


@pytest.mark.django_db
def test_a_sealed_key_does_not_open_for_another_wallet(learner):
    wallet = wallet_for(learner)
    other = wallet_for(User.objects.create(username="Grace"))

    with pytest.raises(wallets.WalletKeyUnreadable):
        wallets.key_open(wallet.sealed_key, address=other.address)


@pytest.mark.django_db
def test_a_sealed_key_does_not_open_under_another_encryption_key(learner, settings):
    wallet = wallet_for(learner)
    settings.WALLET_ENCRYPTION_KEY = "A" * 43 + "="

    with pytest.raises(wallets.WalletKeyUnreadable):
        wallets.wallet_signer(wallet)


def test_production_refuses_the_development_encryption_key(settings):
    settings.PRODUCTION = True
    settings.WALLET_ENCRYPTION_KEY = ""

    [finding] = AccountWallet.check()

    assert isinstance(finding, Error)
    assert finding.id == "payments.E005"


def test_production_accepts_its_own_encryption_key(settings):
    settings.PRODUCTION = True
    settings.WALLET_ENCRYPTION_KEY = "A" * 43 + "="

    assert AccountWallet.check() == []


@pytest.mark.parametrize("key", ["short", "A" * 44, "A" * 42 + "!="])
def test_a_malformed_encryption_key_is_refused_without_being_quoted(settings, key):
    settings.WALLET_ENCRYPTION_KEY = key

    [finding] = AccountWallet.check()

    assert finding.id == "payments.E004"
    assert key not in finding.msg


def test_a_malformed_starting_balance_is_refused(settings):
    settings.WALLET_STARTING_BALANCE = "one"

    [finding] = AccountWallet.check()

    assert finding.id == "payments.E006"


# Buying


@pytest.mark.django_db
def test_buying_charges_the_wallet_once_and_shows_the_body(
    buyer, learner, lesson, token
):
    response = buyer.post(buy_url(lesson), shown(lesson), follow=True)

    purchase = Purchase.objects.get(account=learner)
    assert response.redirect_chain == [(page_url(lesson), HTTPStatus.FOUND)]
    assert BODY_TEXT in response.text
    assert "Buy for 0.005 AIN" not in response.text
    assert f"/sales/receipts/{purchase.transaction}/" in response.text
    assert wallet_balance(learner, token) == ONE_AIN - PRICE
    assert purchase.lesson == lesson
    assert purchase.units == PRICE


@pytest.mark.django_db
def test_the_lesson_page_links_its_owner_to_the_receipt_page(buyer, learner, lesson):
    buyer.post(buy_url(lesson), shown(lesson), follow=True)

    page = buyer.get(page_url(lesson)).text

    purchase = Purchase.objects.get(account=learner)
    assert (
        f'You bought this lesson. <a href="/sales/receipts/{purchase.transaction}/">'
        in page
    )
    assert "/api/purchases/" not in page


@pytest.mark.django_db
def test_a_purchase_is_settled_on_the_ledger_to_the_site(buyer, learner, lesson):
    buyer.post(buy_url(lesson), shown(lesson))

    purchase = Purchase.objects.get(account=learner)
    settlement = Transfer.objects.get(transaction=purchase.transaction)
    assert settlement.kind == Transfer.Kind.SETTLEMENT
    assert settlement.payer == AccountWallet.objects.get(account=learner).address
    assert settlement.payee == purchase.payee


@pytest.mark.django_db
def test_buying_again_charges_nothing(buyer, learner, lesson, token):
    buyer.post(buy_url(lesson), shown(lesson))

    response = buyer.post(buy_url(lesson), shown(lesson), follow=True)

    assert "nothing more was charged" in response.text
    assert Purchase.objects.filter(account=learner).count() == 1
    assert wallet_balance(learner, token) == ONE_AIN - PRICE


@pytest.mark.django_db
def test_buying_again_says_when_and_for_how_much_it_was_bought(buyer, learner, lesson):
    buyer.post(buy_url(lesson), shown(lesson))
    purchase = Purchase.objects.get(account=learner)
    purchase.created = datetime(2026, 3, 9, 14, 5, tzinfo=UTC)
    purchase.save()

    response = buyer.post(buy_url(lesson), shown(lesson), follow=True)

    assert (
        f"you bought it on 9 Mar 2026, 14:05 for 0.005 AIN; nothing more was "
        f'charged. <a href="/sales/receipts/{purchase.transaction}/">Receipt</a>'
    ) in response.text


@pytest.mark.django_db
def test_insufficient_funds_are_told_and_charge_nothing(
    buyer, learner, lesson, token, settings
):
    settings.WALLET_STARTING_BALANCE = "0.001"

    response = buyer.post(buy_url(lesson), shown(lesson), follow=True)

    assert "your wallet does not hold enough" in response.text
    assert "Nothing was charged" in response.text
    assert "python manage.py wallet_fund ADDRESS AMOUNT" in response.text
    assert BODY_TEXT not in response.text
    assert not Purchase.objects.exists()
    assert wallet_balance(learner, token) == ONE_AIN // 1000


@pytest.mark.django_db
def test_an_empty_wallet_in_production_is_told_it_cannot_be_filled_yet(
    buyer, learner, lesson, token, settings
):
    settings.PRODUCTION = True
    settings.WALLET_ENCRYPTION_KEY = "A" * 43 + "="

    response = buyer.post(buy_url(lesson), shown(lesson), follow=True)

    assert "holds 0 AIN; the payment is 0.005 AIN" in response.text
    assert "This site cannot add money to your wallet yet" in response.text
    assert "wallet_fund" not in response.text
    assert not Purchase.objects.exists()


@pytest.mark.django_db
def test_a_price_raised_after_the_page_was_shown_is_not_charged(
    buyer, learner, lesson, token
):
    page = buyer.get(page_url(lesson))
    assert "Buy for 0.005 AIN" in page.text
    lesson.price = Decimal("0.5")
    lesson.save()

    response = buyer.post(buy_url(lesson), {"price": "0.005 AIN"}, follow=True)

    assert "costs 0.5 AIN now, not the 0.005 AIN your page showed" in response.text
    assert "Nothing was charged" in response.text
    assert "Buy for 0.5 AIN" in response.text
    assert BODY_TEXT not in response.text
    assert not Purchase.objects.exists()
    assert wallet_balance(learner, token) == ONE_AIN


@pytest.mark.django_db
def test_the_new_price_is_charged_once_the_buyer_agrees_to_it(
    buyer, learner, lesson, token
):
    lesson.price = Decimal("0.5")
    lesson.save()
    buyer.post(buy_url(lesson), {"price": "0.005 AIN"})

    response = buyer.post(buy_url(lesson), {"price": "0.5 AIN"}, follow=True)

    assert BODY_TEXT in response.text
    assert Purchase.objects.get(account=learner).units == ONE_AIN // 2
    assert wallet_balance(learner, token) == ONE_AIN // 2


@pytest.mark.django_db
def test_a_buy_that_names_no_price_charges_nothing(buyer, learner, lesson):
    response = buyer.post(buy_url(lesson), follow=True)

    assert "costs 0.005 AIN; the page you bought from did not say so" in (response.text)
    assert "Nothing was charged" in response.text
    assert not Purchase.objects.exists()


@pytest.mark.django_db
def test_a_stale_session_is_sent_to_reauthenticate_and_charged_nothing(
    client, learner, lesson
):
    signed_in(client, learner, fresh=False)

    response = client.post(
        buy_url(lesson), shown(lesson), headers={"Referer": page_url(lesson)}
    )

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/reauthenticate/?next=")
    assert not Purchase.objects.exists()
    assert not AccountWallet.objects.exists()


@pytest.mark.django_db
def test_a_visitor_not_signed_in_is_sent_to_sign_in(client, lesson):
    response = client.post(buy_url(lesson), shown(lesson))

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/signin/")
    assert not Purchase.objects.exists()


@pytest.mark.django_db
def test_buying_needs_the_csrf_token(learner, lesson):
    client = signed_in(Client(enforce_csrf_checks=True), learner)

    response = client.post(buy_url(lesson), shown(lesson))

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not Purchase.objects.exists()


@pytest.mark.django_db
def test_buying_is_a_post(buyer, lesson):
    response = buyer.get(buy_url(lesson))

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED


@pytest.mark.django_db
def test_buying_an_unknown_lesson_is_404(buyer):
    response = buyer.post("/lessons/no-such-lesson/buy")

    assert response.status_code == HTTPStatus.NOT_FOUND


@pytest.mark.django_db
def test_buying_a_free_lesson_charges_nothing(buyer, learner):
    free = LessonFactory()

    response = buyer.post(buy_url(free), shown(free), follow=True)

    assert "free to read" in response.text
    assert not Purchase.objects.exists()
    assert not AccountWallet.objects.exists()


@pytest.mark.django_db
def test_an_unreachable_facilitator_refuses_the_buy_and_charges_nothing(
    buyer, learner, lesson, token, settings
):
    settings.X402_FACILITATOR_URL = "http://127.0.0.1:9/facilitator"

    response = buyer.post(buy_url(lesson), shown(lesson), follow=True)

    assert "The payment facilitator gave no answer" in response.text
    assert "nothing was charged" in response.text
    assert not Purchase.objects.exists()
    assert wallet_balance(learner, token) == ONE_AIN


@pytest.mark.django_db(transaction=True)
def test_parallel_buys_by_one_account_charge_once(learner, lesson, token) -> None:
    clients = [signed_in(Client(), learner) for _ in range(4)]
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def buy(client: Client) -> None:
        try:
            start.wait()
            statuses.append(client.post(buy_url(lesson), shown(lesson)).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=buy, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [HTTPStatus.FOUND] * len(clients)
    assert Purchase.objects.filter(account=learner).count() == 1
    assert AccountWallet.objects.filter(account=learner).count() == 1
    assert wallet_balance(learner, token) == ONE_AIN - PRICE
    assert Transfer.objects.filter(kind=Transfer.Kind.SETTLEMENT).count() == 1


# Reading what was bought


@pytest.mark.django_db
def test_the_page_shows_the_paywall_with_a_buy_button_to_an_account(buyer, lesson):
    response = buyer.get(page_url(lesson))

    assert BODY_TEXT not in response.text
    assert "Buy for 0.005 AIN</button>" in response.text
    assert f'action="{buy_url(lesson)}"' in response.text
    assert content_url(lesson) in response.text


@pytest.mark.django_db
def test_the_page_asks_a_visitor_to_sign_in_to_buy(client, lesson):
    response = client.get(page_url(lesson))

    assert BODY_TEXT not in response.text
    assert "Sign in to buy" in response.text
    assert "Buy for 0.005 AIN" not in response.text
    assert content_url(lesson) in response.text


@pytest.mark.django_db
def test_another_account_still_sees_the_paywall(buyer, lesson):
    buyer.post(buy_url(lesson), shown(lesson))
    other = signed_in(Client(), User.objects.create(username="Grace"))

    response = other.get(page_url(lesson))

    assert BODY_TEXT not in response.text
    assert "Buy for 0.005 AIN" in response.text


@pytest.mark.django_db
def test_the_owner_reads_the_body_through_the_api_with_the_session(buyer, lesson):
    buyer.post(buy_url(lesson), shown(lesson))

    response = buyer.get(content_url(lesson))

    assert response.status_code == HTTPStatus.OK
    assert response.json()["markdown"] == lesson.body
    assert "PAYMENT-RESPONSE" not in response
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_owner_reads_the_body_through_the_api_with_a_token(buyer, learner, lesson):
    buyer.post(buy_url(lesson), shown(lesson))
    _, secret = token_create(user=learner, name="script")

    response = Client().get(
        content_url(lesson), headers={"Authorization": f"Bearer {secret}"}
    )

    assert response.status_code == HTTPStatus.OK
    assert response.json()["markdown"] == lesson.body


@pytest.mark.django_db
def test_the_owner_sending_a_payment_too_is_not_charged(
    buyer, learner, lesson, payer, token
):
    buyer.post(buy_url(lesson), shown(lesson))
    _, secret = token_create(user=learner, name="script")
    offer = offer_of(Client().get(content_url(lesson)))
    payment = header_of(payment_for(payer, offer))

    response = Client().get(
        content_url(lesson),
        headers={"Authorization": f"Bearer {secret}", "PAYMENT-SIGNATURE": payment},
    )

    assert response.status_code == HTTPStatus.OK
    assert "PAYMENT-RESPONSE" not in response
    assert balance_of(token=token, address=payer.address) == ONE_AIN
    assert Purchase.objects.count() == 1


@pytest.mark.django_db
def test_an_account_that_did_not_buy_gets_402_through_the_api(learner, lesson):
    _, secret = token_create(user=learner, name="script")

    response = Client().get(
        content_url(lesson), headers={"Authorization": f"Bearer {secret}"}
    )

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED


@pytest.mark.django_db
def test_a_token_of_another_account_gets_402(buyer, lesson):
    buyer.post(buy_url(lesson), shown(lesson))
    _, secret = token_create(user=User.objects.create(username="Grace"), name="x")

    response = Client().get(
        content_url(lesson), headers={"Authorization": f"Bearer {secret}"}
    )

    assert response.status_code == HTTPStatus.PAYMENT_REQUIRED


@pytest.mark.django_db
def test_a_revoked_token_is_refused_with_401(buyer, learner, lesson):
    buyer.post(buy_url(lesson), shown(lesson))
    token, secret = token_create(user=learner, name="script")
    token.revoked = token.created
    token.save()

    response = Client().get(
        content_url(lesson), headers={"Authorization": f"Bearer {secret}"}
    )

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_a_program_still_pays_as_before(client, lesson, token):
    program = account_new()
    from payments.services import wallet_fund

    wallet_fund(address=program.address, amount=ONE_AIN)
    offer = offer_of(client.get(content_url(lesson)))

    response = client.get(
        content_url(lesson),
        headers={"PAYMENT-SIGNATURE": header_of(payment_for(program, offer))},
    )

    assert response.status_code == HTTPStatus.OK
    assert Purchase.objects.get().account is None


@pytest.mark.django_db
def test_a_wallet_that_cannot_be_opened_is_told_and_charges_nothing(
    buyer, learner, lesson, token, settings
):
    wallet_for(learner)
    settings.WALLET_ENCRYPTION_KEY = "A" * 43 + "="

    response = buyer.post(buy_url(lesson), shown(lesson), follow=True)

    assert "your wallet cannot be opened" in response.text
    assert not Purchase.objects.exists()
    assert wallet_balance(learner, token) == ONE_AIN
