"""Filters as stored data: a query string's values by name, and back."""

from __future__ import annotations

from django.http import QueryDict

# Names that are not filters: the page cursor, the chosen export, the CSRF token.
NOT_FILTERS = ("page", "before", "after", "format", "exporter", "csrfmiddlewaretoken")


def params_dict(data: QueryDict) -> dict[str, list[str]]:
    """Every value of every filter name (bounded in count and length)."""
    return {
        key: [value[:500] for value in data.getlist(key)][:20]
        for key in list(data.keys())[:40]
        if key not in NOT_FILTERS
    }


def params_querydict(params: dict[str, list[str]]) -> QueryDict:
    data = QueryDict(mutable=True)
    for key, values in params.items():
        data.setlist(key, list(values))
    return data
