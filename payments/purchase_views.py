"""Buying a gated lesson from its page, or the lessons of a learning path
from the path's page, with the signed-in account's own wallet
(payments/gate.py ``lessons_buy``)."""

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.reauth import recent_passkey_required
from lessons.graph import LearningPath, learning_path
from lessons.models import Lesson
from payments import gate, selectors
from payments.models import Purchase
from payments.resource_server import SaleUnavailable
from payments.sales import Amount, token_of
from payments.verification import Reason
from payments.wallets import WalletKeyUnreadable

logger = logging.getLogger(__name__)


@require_POST
@recent_passkey_required
def lesson_buy(request: HttpRequest, slug: str) -> HttpResponse:
    """Buy the lesson for the account, once, after a recent passkey
    confirmation; back to the lesson page with what happened."""
    lesson = selectors.lesson_find(slug=slug)
    if lesson is None:
        raise Http404(f"There is no lesson {slug!r}.")
    page = lesson.get_absolute_url()
    if not lesson.gated:
        messages.info(request, "This lesson is free to read; nothing was charged.")
        return redirect(page)
    account = request.user
    if not isinstance(account, User):
        raise TypeError("recent_passkey_required lets only accounts through.")

    resource = gate.lesson_resource(
        request, lesson=lesson, mime_type="application/json"
    )
    outcome = _buy(
        request,
        lambda: gate.lesson_buy(
            request,
            account=account,
            lesson=lesson,
            resource=resource,
            price_shown=_price_shown(request),
        ),
    )
    if outcome is None:
        return redirect(page)
    if outcome.new:
        messages.success(
            request,
            format_html(
                'You bought “{}” for {}. <a href="{}">Receipt</a>',
                lesson.title,
                lesson.price_display,
                _receipt_url(outcome.purchases[0]),
            ),
        )
    else:
        messages.info(request, _owned_text(account, lesson))
    return redirect(page)


@require_POST
@recent_passkey_required
def path_buy(request: HttpRequest, slug: str) -> HttpResponse:
    """Buy, in one payment, every gated lesson of the learning path to the
    lesson that the account does not own yet; back to the path page."""
    lesson = selectors.lesson_find(slug=slug)
    if lesson is None:
        raise Http404(f"There is no lesson {slug!r}.")
    account = request.user
    if not isinstance(account, User):
        raise TypeError("recent_passkey_required lets only accounts through.")
    path = learning_path(lesson)
    page = reverse("lessons:path", kwargs={"slug": lesson.slug})
    outcome = _buy(
        request,
        lambda: gate.path_buy(
            request,
            account=account,
            path=path,
            resource=gate.path_resource(request, path=path),
            price_shown=_price_shown(request),
        ),
    )
    if outcome is None:
        return redirect(page)
    if not outcome.new:
        messages.info(
            request,
            format_html(
                "You own every lesson of this path that is for sale; nothing more "
                'was charged. What you bought is on <a href="{}">your account '
                "page</a>.",
                reverse("accounts:account"),
            ),
        )
        return redirect(page)
    bought = outcome.purchases
    total = LearningPath(
        lesson=lesson, steps=[purchase.lesson for purchase in bought]
    ).totals_display
    messages.success(
        request,
        format_html(
            "You bought {} lesson{} of this path for {} in one payment. "
            '<a href="{}">Receipt</a>',
            len(bought),
            "" if len(bought) == 1 else "s",
            total,
            _receipt_url(bought[0]),
        ),
    )
    return redirect(page)


def _buy(
    request: HttpRequest, buy: Callable[[], gate.AccountPurchase]
) -> gate.AccountPurchase | None:
    """What ``buy`` bought, or None with a message saying why nothing was."""
    try:
        return buy()
    except gate.PriceChanged as change:
        messages.error(
            request,
            f"Not bought: {change.message} Nothing was charged; check the "
            f"price and buy again to pay {change.price}.",
        )
    except gate.SaleRefused as refusal:
        messages.error(request, _refusal_text(refusal))
    except SaleUnavailable as error:
        messages.error(request, f"Not bought: {error} Nothing was charged.")
    except WalletKeyUnreadable:
        # The encryption key changed or the row was altered: the operators'
        # problem, not the learner's.
        logger.exception("Account %s could not open its wallet", request.user.pk)
        messages.error(
            request,
            "Not bought: your wallet cannot be opened right now; nothing was "
            "charged. The site's operators have been told.",
        )
    return None


def _owned_text(account: User, lesson: Lesson) -> str:
    """Says when the lesson was bought and for how much: a second press of
    the button (a double click) may be the one whose answer the browser
    shows, while the first one's, which charged, is dropped."""
    owned = Purchase.objects.of_account(account).filter(lesson=lesson).first()
    if owned is None:
        return format_html("You already own “{}”; nothing was charged.", lesson.title)
    price = Amount(
        network=owned.network,
        asset=owned.asset,
        units=owned.units,
        token=token_of(network=owned.network, asset=owned.asset),
    )
    return format_html(
        "You already own “{}”: you bought it on {} for {}; nothing more was "
        'charged. <a href="{}">Receipt</a>',
        lesson.title,
        date_format(localtime(owned.created), "j M Y, H:i"),
        price.text,
        _receipt_url(owned),
    )


def _price_shown(request: HttpRequest) -> str:
    """The price the page's buy button named, which the buyer agreed to;
    nothing else may be charged."""
    return request.POST.get("price", "").strip()


def _receipt_url(purchase: Purchase) -> str:
    return reverse("payments:receipt", kwargs={"transaction": purchase.transaction})


def _refusal_text(refusal: gate.SaleRefused) -> str:
    if refusal.reason == Reason.INSUFFICIENT_FUNDS:
        # Limitation: in production nothing pays into an account's wallet
        # but its lessons' sales (payments/services.py ``wallet_for``), so
        # the learner is told so rather than left to look for a way.
        way_in = (
            "This site cannot add money to your wallet yet."
            if settings.PRODUCTION
            else "In development, python manage.py wallet_fund ADDRESS AMOUNT "
            "adds test money to it."
        )
        return (
            "Not bought: your wallet does not hold enough. "
            f"{refusal.message} Nothing was charged. {way_in}"
        )
    if refusal.reason == Reason.FACILITATOR_UNAVAILABLE:
        # The facilitator's message says what is known about a charge.
        return f"Not bought: {refusal.message}"
    return f"Not bought: {refusal.message} Nothing was charged."
