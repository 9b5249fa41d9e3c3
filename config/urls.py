from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.views import admin_signin


def live(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Also the benchmarks' baseline view."""
    return HttpResponse("ok", content_type="text/plain")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """JSON for API addresses, the site's page for the rest."""
    if request.path.startswith(("/api/", "/facilitator/")):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)


handler404 = not_found

urlpatterns = [
    path("", include("lessons.urls")),
    path("", include("payments.urls_buy")),
    path("api/", include("lessons.api.urls")),
    path("api/", include("payments.api.urls")),
    path("api/", include("deployments.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"
    ),
    # The admin signs in with passkeys like everyone else.
    path("admin/login/", admin_signin),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/account/", include("accounts.api.urls")),
    path("facilitator/", include("payments.urls")),
    path("sales/", include("payments.urls_pages")),
    path("deployments/", include("deployments.urls")),
    path("health/live", live, name="live"),
]
