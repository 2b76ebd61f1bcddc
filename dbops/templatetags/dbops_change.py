"""The index-suggestion panel on a change page (before/after mean time)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.inclusion_tag("dbops/_change_index.html", takes_context=True)
def index_suggestion_panel(context, change):
    from dbops.models import IndexSuggestion

    return {
        "csrf_token": context.get("csrf_token"),
        "suggestion": IndexSuggestion.objects.filter(change=change)
        .select_related("target")
        .first(),
    }
