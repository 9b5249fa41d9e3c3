"""Lesson bodies for programs, sold through x402, and their receipts.

``GET /api/lessons/<slug>/content``: the body as JSON, Markdown or HTML by
``Accept``; free for a lesson that is not gated, sold through
payments/gate.py for one that is. ``GET /api/purchases/<transaction>``: the
receipt of one sale.
"""

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from lessons.models import Lesson
from payments import selectors
from payments.gate import Resource, lesson_sell
from payments.offers import offers_configured

# The first is the default, for a request without Accept or with */*.
MEDIA_TYPES = ["application/json", "text/markdown", "text/html"]
# A standalone page of stored, sanitised HTML: nothing in it may run or load.
HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:"


@require_http_methods(["GET", "HEAD"])
def lesson_content(request: HttpRequest, slug: str) -> HttpResponse:
    """A lesson's body, free or sold. HEAD answers as GET, without the body
    (and, for a gated lesson, without taking a payment)."""
    lesson = selectors.lesson_find(slug=slug)
    if lesson is None:
        return JsonResponse({"detail": f"There is no lesson {slug!r}."}, status=404)
    media_type = request.get_preferred_type(MEDIA_TYPES)
    if media_type is None:
        # Before any payment: nothing is sold in a form nobody accepts.
        return JsonResponse(
            {"detail": f"The body is served as {', '.join(MEDIA_TYPES)}."}, status=406
        )

    def render() -> HttpResponse:
        return _body(lesson, media_type)

    if not lesson.gated:
        response = render()
    else:
        path = reverse("payments-api:lesson-content", kwargs={"slug": lesson.slug})
        resource = Resource(
            url=request.build_absolute_uri(path),
            description=f"The full text of the lesson {lesson.title!r}.",
            mime_type=media_type,
        )
        response = lesson_sell(request, lesson=lesson, resource=resource, render=render)
    response["Vary"] = "Accept"
    if request.method == "HEAD":
        # Headers only, with the length the body would have.
        response["Content-Length"] = str(len(response.content))
        response.content = b""
    return response


@require_safe
@never_cache
def purchase_receipt(request: HttpRequest, transaction: str) -> JsonResponse:
    """A sale's receipt.

    Limitation: anyone holding a transaction id may read its receipt. The
    site's own facilitator makes ids of 32 random bytes, as hard to guess as
    a token, and a receipt names addresses and a lesson, no account; but a
    sale settled on a public chain has a public id, and so its receipt is
    public too. Receipts only their buyer may read come with purchases by
    signed-in accounts.
    """
    purchase = selectors.purchase_get(transaction=transaction)
    if purchase is None:
        return JsonResponse(
            {"detail": f"There is no purchase {transaction!r}."}, status=404
        )
    receipt = {
        "transaction": purchase.transaction,
        "lesson": {
            "slug": purchase.lesson.slug,
            "title": purchase.lesson.title,
            "url": request.build_absolute_uri(purchase.lesson.get_absolute_url()),
        },
        "amount": str(purchase.units),
        "price": _price_text(purchase.network, purchase.asset, purchase.units),
        "asset": purchase.asset,
        "network": purchase.network,
        "payer": purchase.payer,
        "payee": purchase.payee,
        "created": purchase.created.isoformat(),
    }
    return JsonResponse(receipt)


def _body(lesson: Lesson, media_type: str) -> HttpResponse:
    if media_type == "text/markdown":
        return HttpResponse(lesson.body, content_type="text/markdown; charset=utf-8")
    if media_type == "text/html":
        page = format_html(
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>{}</title></head><body><main>{}</main></body></html>\n",
            lesson.title,
            # Rendered and sanitised (nh3) when the lesson was saved.
            mark_safe(lesson.body_html),
        )
        response = HttpResponse(page, content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = HTML_POLICY
        return response
    document = {
        "slug": lesson.slug,
        "title": lesson.title,
        "content_sha256": lesson.body_sha256,
        "markdown": lesson.body,
        "html": lesson.body_html,
    }
    return HttpResponse(
        json.dumps(document, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )


def _price_text(network: str, asset: str, units: int) -> str | None:
    for offer in offers_configured():
        token = offer.token
        if (token.network, token.address.lower()) == (network, asset.lower()):
            return token.text_from_units(units)
    return None
