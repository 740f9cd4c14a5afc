from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from .envelope import success


class EnvelopePagination(PageNumberPagination):
    """`?page=N&page_size=M`; the page's items in `data`, the counts in `pagination`."""

    page_size_query_param = "page_size"

    def __init__(self) -> None:
        self.page_size = settings.API_PAGE_SIZE
        self.max_page_size = settings.API_MAX_PAGE_SIZE

    def get_paginated_response(self, data):
        return Response(success(data, "ok", 200, pagination={
            "count": self.page.paginator.count,
            "page": self.page.number,
            "pages": self.page.paginator.num_pages,
            "page_size": self.get_page_size(self.request),
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
        }))

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["status", "message", "data", "pagination"],
            "properties": {
                "status": {"type": "integer", "example": 200},
                "message": {"type": "string"},
                "data": schema,
                "pagination": {
                    "type": "object",
                    "required": ["count", "page", "pages", "page_size", "next", "previous"],
                    "properties": {
                        "count": {"type": "integer"},
                        "page": {"type": "integer"},
                        "pages": {"type": "integer"},
                        "page_size": {"type": "integer"},
                        "next": {"type": "string", "format": "uri", "nullable": True},
                        "previous": {"type": "string", "format": "uri", "nullable": True},
                    },
                },
            },
        }
