"""Keyset pagination: a page is found by the position of its first row, never by an
OFFSET, so the thousandth page costs what the first does and no COUNT(*) is run."""

from django.utils.translation import gettext
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from whalefall.db import MAX_BIGINT


class KeysetPagination(CursorPagination):
    """Newest first by primary key; ``?limit=`` up to 1 000 rows per page."""

    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000
    ordering = "-pk"

    def decode_cursor(self, request):
        # A cursor the API did not hand out is a bad parameter (400, with its path), not a
        # missing page: DRF's 404 would read as "no such list".
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {self.cursor_query_param: [gettext("Invalid cursor.")]}, code="invalid"
            ) from None


class FeedPagination(KeysetPagination):
    """A change feed: ``?since=<cursor>`` returns the changes after the cursor in commit
    order (``0`` starts at the beginning), with ``next_since`` to poll with next time, up to
    ``?limit=`` (5 000) per call. Without ``since`` the list is newest first, by keyset
    pages. The queryset must provide ``feed_after((transaction, id))``."""

    max_page_size = 5000
    since_query_param = "since"

    def paginate_queryset(self, queryset, request, view=None):
        self.since = request.query_params.get(self.since_query_param)
        if self.since is None:
            return super().paginate_queryset(queryset, request, view)
        position = self.decode_since(self.since)
        self.page_size = self.get_page_size(request)
        self.request = request
        rows = list(queryset.feed_after(position)[: self.page_size + 1])
        self.has_more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        self.next_since = f"{rows[-1].txid}.{rows[-1].pk}" if rows else self.since
        return rows

    @staticmethod
    def decode_since(value: str) -> tuple[int, int]:
        if value == "0":
            return (0, 0)
        transaction, _dot, pk = value.partition(".")
        try:
            position = (int(transaction), int(pk))
        except ValueError:
            position = (-1, -1)
        if min(position) < 0 or max(position) > MAX_BIGINT:
            raise ValidationError(
                {"since": [gettext("Not a feed cursor: use 0 or a next_since value.")]},
                code="invalid",
            )
        return position

    def get_paginated_response(self, data):
        if self.since is None:
            return super().get_paginated_response(data)
        return Response({"next_since": self.next_since, "has_more": self.has_more, "results": data})

    def get_paginated_response_schema(self, schema):
        keyset = super().get_paginated_response_schema(schema)
        keyset["properties"]["next_since"] = {
            "type": "string",
            "description": "With ?since=: the cursor to poll with next.",
        }
        keyset["properties"]["has_more"] = {
            "type": "boolean",
            "description": "With ?since=: more changes are ready now.",
        }
        return keyset

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": self.since_query_param,
                "required": False,
                "in": "query",
                "description": "Feed cursor: 0 for the beginning, then the last next_since.",
                "schema": {"type": "string", "pattern": r"^(0|[0-9]+\.[0-9]+)$"},
            },
        ]
