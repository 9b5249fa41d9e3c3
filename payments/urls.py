"""The x402 facilitator, mounted under ``/facilitator/``. The paths have no
trailing slash: clients append ``/verify``, ``/settle`` and ``/supported``
to the facilitator's URL."""

from django.urls import path

from payments.api import views

app_name = "facilitator"

urlpatterns = [
    path("verify", views.verify, name="verify"),
    path("settle", views.settle, name="settle"),
    path("supported", views.supported, name="supported"),
]
