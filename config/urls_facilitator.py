"""The facilitator served as its own process (``manage.py facilitator_serve``):
its standard API at the root, so that its URL is the server's address, and
the liveness check. Everything else answers a JSON 404."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from config.urls import live


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


handler404 = not_found

urlpatterns = [
    path("", include("payments.urls")),
    path("health/live", live, name="live"),
]
