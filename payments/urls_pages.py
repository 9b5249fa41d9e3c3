"""Sales pages and receipts, mounted under ``/sales/``."""

from django.urls import path

from payments import views

app_name = "payments"

urlpatterns = [
    path("", views.sales_page, name="sales"),
    path("lessons.json", views.SalesView.as_view(), name="sales-json"),
    path(
        "receipts/<str:transaction>/",
        views.purchase_receipt_page,
        name="receipt",
    ),
]
