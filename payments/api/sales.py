"""Lesson bodies for programs, sold through x402, and their receipts.

``GET /api/lessons/<slug>/content``: the body as JSON, Markdown or HTML by
``Accept``; free for a lesson that is not gated, sold through
payments/gate.py for one that is. ``GET /api/lessons/<slug>/path/bundle``:
the bodies of every lesson of the learning path to it, as JSON, sold as one
bundle. ``GET /api/purchases/<transaction>``: the
receipt of one sale.
"""

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from lessons.graph import learning_path
from lessons.models import Lesson
from payments import selectors
from payments.gate import Resource, lesson_sell, path_resource, path_sell
from payments.offers import offers_configured

# The first is the default, for a request without Accept or with */*.
MEDIA_TYPES = ["application/json", "text/markdown", "text/html"]
# A standalone page of stored, sanitised HTML: nothing in it may run or load.
HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:"

# The views below answer GET and HEAD only, which change nothing; exempt
# from the CSRF check, a program's POST gets 405 with the methods there
# are, not a 403 page about a cookie it never had.


@csrf_exempt
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


@csrf_exempt
@require_http_methods(["GET", "HEAD"])
def path_bundle(request: HttpRequest, slug: str) -> HttpResponse:
    """Every lesson of the learning path to a lesson, bodies included, as
    JSON, sold as one bundle: one payment for the gated lessons the buyer's
    account does not own yet. Free when none of them is for sale."""
    lesson = selectors.lesson_find(slug=slug)
    if lesson is None:
        return JsonResponse({"detail": f"There is no lesson {slug!r}."}, status=404)
    if request.get_preferred_type(["application/json"]) is None:
        return JsonResponse(
            {"detail": "The bundle is served as application/json."}, status=406
        )
    path = learning_path(lesson)

    def render() -> HttpResponse:
        document = {
            "path": lesson.slug,
            "title": f"Learning path to {lesson.title}",
            "lessons": [_body_document(step) for step in _with_bodies(path.steps)],
        }
        return HttpResponse(
            json.dumps(document, ensure_ascii=False),
            content_type="application/json; charset=utf-8",
        )

    if any(step.gated for step in path.steps):
        response = path_sell(
            request,
            path=path,
            resource=path_resource(request, path=path),
            render=render,
        )
    else:
        response = render()
    if request.method == "HEAD":
        response["Content-Length"] = str(len(response.content))
        response.content = b""
    return response


@csrf_exempt
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
    found = selectors.receipt_find(transaction=transaction)
    if found is None:
        return JsonResponse(
            {"detail": f"There is no purchase {transaction!r}."}, status=404
        )
    first = found.first
    lessons = [
        {
            "slug": line.lesson.slug,
            "title": line.lesson.title,
            "url": request.build_absolute_uri(line.lesson.get_absolute_url()),
            "amount": str(line.units),
        }
        for line in found.lines
    ]
    receipt: dict[str, Any] = {"transaction": first.transaction}
    if len(lessons) == 1:
        # A lesson bought on its own; a path's lessons are under "lessons".
        receipt["lesson"] = {key: lessons[0][key] for key in ("slug", "title", "url")}
    receipt |= {
        "lessons": lessons,
        "amount": str(found.units),
        "price": _price_text(first.network, first.asset, found.units),
        "asset": first.asset,
        "network": first.network,
        "payer": first.payer,
        "payee": first.payee,
        "created": first.created.isoformat(),
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
    return HttpResponse(
        json.dumps(_body_document(lesson), ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )


def _body_document(lesson: Lesson) -> dict[str, str]:
    return {
        "slug": lesson.slug,
        "title": lesson.title,
        "content_sha256": lesson.body_sha256,
        "markdown": lesson.body,
        "html": lesson.body_html,
    }


def _with_bodies(lessons: list[Lesson]) -> list[Lesson]:
    """``lessons`` in their order, bodies loaded: a path reads its steps
    without them."""
    full = Lesson.objects.in_bulk([lesson.pk for lesson in lessons])
    return [full[lesson.pk] for lesson in lessons]


def _price_text(network: str, asset: str, units: int) -> str | None:
    for offer in offers_configured():
        token = offer.token
        if (token.network, token.address.lower()) == (network, asset.lower()):
            return token.text_from_units(units)
    return None
