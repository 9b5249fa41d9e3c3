"""The one application error type, and where it becomes an HTTP answer."""

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A refusal the user can act on: a clear message and a 4xx status."""

    def __init__(
        self,
        message: str,
        *,
        status: HTTPStatus = HTTPStatus.BAD_REQUEST,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra or {}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=exc.status)
    return exception_handler(exc, context)


class ApplicationErrorMiddleware:
    """Render an ApplicationError raised by a page view as an error page.

    It also refuses an address holding a NUL character: 404 in its path, 400
    in its query. No view can use one, and PostgreSQL refuses NUL in any
    text it is asked to compare, which would make a lookup a server error."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return self.answer(
                request,
                ApplicationError(
                    "There is no page at an address holding a NUL character (%00).",
                    status=HTTPStatus.NOT_FOUND,
                ),
            )
        if any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return self.answer(
                request,
                ApplicationError("A query parameter holds a NUL character (%00)."),
            )
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if not isinstance(exception, ApplicationError):
            return None
        return self.answer(request, exception)

    @staticmethod
    def answer(request: HttpRequest, exception: ApplicationError) -> HttpResponse:
        if wants_json(request) or request.path.startswith(("/api/", "/facilitator/")):
            return JsonResponse(
                {"detail": exception.message, **exception.extra},
                status=exception.status,
            )
        return render(
            request,
            "error.html",
            {"status": exception.status, "message": exception.message},
            status=exception.status,
        )


def wants_json(request: HttpRequest) -> bool:
    return request.content_type == "application/json" or (
        "application/json" in request.headers.get("Accept", "")
    )
