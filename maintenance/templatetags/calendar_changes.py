"""A calendar window's list of changes, written here rather than by a template loop: the
month view lists 175 changes at a time and the week view a few hundred, and the template
engine took about a quarter of a millisecond for each (issue 13). Every value passes
through ``format_html``'s escaping, as a template's would."""

from __future__ import annotations

from django import template
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime

from maintenance.calendar_selectors import RESTRICTED, ChangeEntry

register = template.Library()


def _item(change: ChangeEntry, detailed: bool) -> tuple[SafeString]:
    if change.visible:
        name = format_html(
            '<a href="{0}">{1}</a> <a class="title" href="{0}">{2}</a>',
            change.url,
            change.public_id,
            change.title,
        )
    else:
        name = format_html('<span class="muted">{}</span>', RESTRICTED)
    if detailed:
        # The times as the date filter writes them: in the viewer's zone.
        start = template_localtime(change.planned_start)
        name = format_html(
            '<time datetime="{}">{}</time> {} <span class="muted">({} min)</span>',
            date_format(start, "c"),
            date_format(start, "H:i T"),
            name,
            change.planned_minutes,
        )
    return (name,)


@register.simple_tag
def calendar_changes(changes: list[ChangeEntry], detailed: bool = False) -> SafeString:
    """One ``<li>`` per change: its id and title linked, or "Change (restricted)"; with
    ``detailed`` (the week view) its planned start and minutes too."""
    return format_html_join("", "<li>{}</li>", (_item(change, detailed) for change in changes))
