"""Keyset pagination: each page starts after the last row of the one before, found by an
index on the ordering, so page 1,000 costs what page 1 does and a row added meanwhile
is neither skipped nor shown twice. The cursor is signed: a forged one is a clear 400."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

SALT = "api.keyset"


def _encode(values: list[Any]) -> str:
    typed = [["d", v.isoformat()] if isinstance(v, datetime) else ["i", v] for v in values]
    return signing.dumps(typed, salt=SALT, compress=True)


def _decode(cursor: str, width: int) -> list[Any]:
    try:
        typed = signing.loads(cursor, salt=SALT)
        values = [datetime.fromisoformat(v) if t == "d" else int(v) for t, v in typed]
    except (signing.BadSignature, ValueError, TypeError):
        raise ValidationError(
            {"cursor": ["This cursor is not valid; start from the first page."]}
        ) from None
    if len(values) != width:
        raise ValidationError({"cursor": ["This cursor belongs to another list."]})
    return values


def after(ordering: tuple[str, ...], values: list[Any]) -> Q:
    """Rows strictly after ``values`` in ``ordering`` (each field ascending, or
    descending with a leading "-"): (a > x) or (a = x and b > y) …"""
    condition = Q()
    equal = Q()
    for field, value in zip(ordering, values, strict=True):
        name = field.lstrip("-")
        op = "lt" if field.startswith("-") else "gt"
        condition |= equal & Q(**{f"{name}__{op}": value})
        equal &= Q(**{name: value})
    return condition


class KeysetPagination(BasePagination):
    """The view names its ``keyset``: fields that order it uniquely (ending in the pk)."""

    page_size = 50
    max_page_size = 200

    def paginate_queryset(self, queryset: QuerySet, request, view=None) -> list:
        ordering: tuple[str, ...] = view.keyset
        self.request = request
        self.limit = self._limit(request)
        cursor = request.query_params.get("cursor")
        queryset = queryset.order_by(*ordering)
        if cursor:
            queryset = queryset.filter(after(ordering, _decode(cursor, len(ordering))))
        rows = list(queryset[: self.limit + 1])
        self.next_cursor = None
        if len(rows) > self.limit:
            rows = rows[: self.limit]
            last = rows[-1]
            self.next_cursor = _encode([getattr(last, f.lstrip("-")) for f in ordering])
        return rows

    def _limit(self, request) -> int:
        raw = request.query_params.get("limit")
        if raw is None or raw == "":
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({"limit": [f"Ask for 1 to {self.max_page_size} rows."]})
        return int(raw)

    def get_paginated_response(self, data) -> Response:
        url = None
        if self.next_cursor:
            url = replace_query_param(self.request.build_absolute_uri(), "cursor", self.next_cursor)
        return Response({"next": url, "results": data})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next page, or null on the last one.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": "cursor",
                "required": False,
                "in": "query",
                "description": "Where the page starts: the `next` link of the page before.",
                "schema": {"type": "string"},
            },
            {
                "name": "limit",
                "required": False,
                "in": "query",
                "description": f"Rows per page, 1 to {self.max_page_size} (default 50).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
