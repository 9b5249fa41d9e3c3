"""Pages about sales: a purchase's receipt, and what instructors sold.

``GET /sales/receipts/<transaction>/``: the receipt as a page, the same as
the JSON receipt at ``/api/purchases/<transaction>``.
``GET /sales/``: sales and revenue per lesson, with sales per day, for
instructors (their lessons) and staff (every lesson); the same numbers as
JSON at ``GET /sales/lessons.json``.
"""

from datetime import date
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.reauth import account_required
from accounts.views import account_of
from config.errors import ApplicationError
from payments import selectors
from payments.sales import Amount, LessonSales, sales_report, token_of

INSTRUCTORS_ONLY = (
    "Sales are shown to instructors and staff. Your account is a learner's; "
    "ask the site's staff to make you an instructor if you author lessons."
)


@require_safe
@never_cache
def purchase_receipt_page(request: HttpRequest, transaction: str) -> HttpResponse:
    """A sale's receipt, for people.

    Limitation: like the JSON receipt, anyone holding a transaction id may
    read this page; the id is the only key. Our own facilitator's ids are 32
    random bytes, but a sale settled on a public chain has a public id. The
    page names addresses and a lesson, never an account, and is not cached.
    """
    receipt = selectors.receipt_find(transaction=transaction)
    if receipt is None:
        raise ApplicationError(
            f"There is no purchase {transaction!r}.", status=HTTPStatus.NOT_FOUND
        )
    purchase = receipt.first
    token = token_of(network=purchase.network, asset=purchase.asset)
    return render(
        request,
        "payments/receipt.html",
        {
            "receipt": receipt,
            "purchase": purchase,
            "amount": Amount(
                network=purchase.network,
                asset=purchase.asset,
                units=receipt.units,
                token=token,
            ),
            "lines": [
                (
                    line,
                    Amount(
                        network=line.network,
                        asset=line.asset,
                        units=line.units,
                        token=token,
                    ),
                )
                for line in receipt.lines
            ],
            "json_url": reverse(
                "payments-api:purchase-receipt",
                kwargs={"transaction": purchase.transaction},
            ),
        },
    )


@require_safe
@account_required
def sales_page(request: HttpRequest) -> HttpResponse:
    user = account_of(request)
    if not user.is_instructor:
        raise ApplicationError(INSTRUCTORS_ONLY, status=HTTPStatus.FORBIDDEN)
    report = sales_report(user=user)
    return render(
        request,
        "payments/sales.html",
        {
            "report": report,
            "everyone": user.role == User.Role.STAFF,
        },
    )


class IsInstructor(BasePermission):
    """Signed in (by session or API token) as an instructor or staff."""

    message = INSTRUCTORS_ONLY

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, User) and request.user.is_instructor


class SalesView(APIView):
    """Sales and revenue per lesson, and sales per day for the last 30
    days, as on the sales page."""

    permission_classes = [IsInstructor]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        report = sales_report(user=account_of(request))
        return Response(
            {
                "days": [day.isoformat() for day in report.days],
                "lessons": [
                    _lesson_sales_json(request, row, report.days)
                    for row in report.lessons
                ],
            }
        )


def _lesson_sales_json(
    request: Request, row: LessonSales, days: list[date]
) -> dict[str, Any]:
    return {
        "slug": row.lesson.slug,
        "title": row.lesson.title,
        "url": request.build_absolute_uri(row.lesson.get_absolute_url()),
        "sales": row.sales,
        "revenue": [
            {
                "network": amount.network,
                "asset": amount.asset,
                "symbol": amount.symbol,
                "units": str(amount.units),
                "amount": amount.decimal,
            }
            for amount in row.revenue
        ],
        "sales_per_day": [row.per_day.get(day, 0) for day in days],
    }
