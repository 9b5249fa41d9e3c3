"""Lesson bodies sold through x402, and receipts; mounted under ``/api/``.
Programs write the content path with and without a final slash; both
work."""

from django.urls import path, re_path

from payments.api import sales

app_name = "payments-api"

urlpatterns = [
    re_path(
        r"^lessons/(?P<slug>[-a-zA-Z0-9_]+)/content/?$",
        sales.lesson_content,
        name="lesson-content",
    ),
    re_path(
        r"^lessons/(?P<slug>[-a-zA-Z0-9_]+)/path/bundle/?$",
        sales.path_bundle,
        name="path-bundle",
    ),
    path(
        "purchases/<str:transaction>",
        sales.purchase_receipt,
        name="purchase-receipt",
    ),
]
