from typing import Any

from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

from config.errors import ApplicationError
from config.parsing import is_whole_number, single_parameter


class PageNumberPagination(pagination.PageNumberPagination):
    """Page numbers; a page that is not a positive number, or past the end,
    is a bad query parameter (400), not a missing resource."""

    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(
        self, queryset: Any, request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        page = single_parameter(request.query_params, self.page_query_param)
        if page and page not in self.last_page_strings and not is_whole_number(page):
            # int() would read other scripts' digits (U+0661 is 1).
            raise ApplicationError(
                "Bad query parameter page: give a number in digits 0-9."
            )
        size = single_parameter(request.query_params, self.page_size_query_param)
        if size is not None and (not is_whole_number(size) or int(size) < 1):
            raise ApplicationError(
                "Bad query parameter page_size: a positive whole number."
            )
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as error:
            raise ApplicationError(
                f"Bad query parameter page: {error.detail}"
            ) from error
