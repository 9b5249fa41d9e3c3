from typing import Any

from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView


class PageNumberPagination(pagination.PageNumberPagination):
    """Page numbers; a page that is not a positive number, or past the end,
    is a bad query parameter (400), not a missing resource."""

    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(
        self, queryset: Any, request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        size = request.query_params.get(self.page_size_query_param)
        if size is not None and (not size.isdigit() or int(size) < 1):
            raise ValidationError({"page_size": "Must be a positive whole number."})
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as error:
            raise ValidationError({"page": str(error.detail)}) from error
