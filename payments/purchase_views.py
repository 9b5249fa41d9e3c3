"""Buying a gated lesson from its page, with the signed-in account's own
wallet (payments/gate.py ``lesson_buy``)."""

import logging

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.reauth import recent_passkey_required
from payments import gate, selectors
from payments.resource_server import SaleUnavailable
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
    try:
        bought = gate.lesson_buy(
            request, account=account, lesson=lesson, resource=resource
        )
    except gate.SaleRefused as refusal:
        messages.error(request, _refusal_text(refusal))
        return redirect(page)
    except SaleUnavailable as error:
        messages.error(request, f"Not bought: {error} Nothing was charged.")
        return redirect(page)
    except WalletKeyUnreadable:
        # The encryption key changed or the row was altered: the operators'
        # problem, not the learner's.
        logger.exception("Account %s could not open its wallet", account.pk)
        messages.error(
            request,
            "Not bought: your wallet cannot be opened right now; nothing was "
            "charged. The site's operators have been told.",
        )
        return redirect(page)

    purchase = bought.purchase
    receipt = reverse(
        "payments-api:purchase-receipt", kwargs={"transaction": purchase.transaction}
    )
    if bought.new:
        messages.success(
            request,
            format_html(
                'You bought “{}” for {}. <a href="{}">Receipt</a>',
                lesson.title,
                lesson.price_display,
                receipt,
            ),
        )
    else:
        messages.info(
            request,
            format_html(
                'You already own “{}”; nothing was charged. <a href="{}">Receipt</a>',
                lesson.title,
                receipt,
            ),
        )
    return redirect(page)


def _refusal_text(refusal: gate.SaleRefused) -> str:
    if refusal.reason == Reason.INSUFFICIENT_FUNDS:
        return (
            "Not bought: your wallet does not hold enough. "
            f"{refusal.message} Nothing was charged."
        )
    if refusal.reason == Reason.FACILITATOR_UNAVAILABLE:
        # The facilitator's message says what is known about a charge.
        return f"Not bought: {refusal.message}"
    return f"Not bought: {refusal.message} Nothing was charged."
