"""The audit trail's rows, written here rather than by a template loop of ten cells a
row, as the change list's are (``changes/templatetags/change_rows.py``): the loop was
the largest part of the page's time after the widgets (issue 13). Every value passes
through ``format_html``'s escaping (by ``portal_format.html_format``), as a template's
would, and times are written in the viewer's zone as the date filter writes them."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime

from compliance.selectors import AuditRow
from portal.models import AuditEvent
from portal.templatetags.portal_format import (
    choice_labels,
    date_text,
    event_label,
    html_join,
    shortener,
)

register = template.Library()

_ROW = (
    '<tr class="outcome-{0}"><td>{1}</td><td><time datetime="{2}">{3}</time></td>'
    '<td>{4}</td><td>{5}</td><td>{6} <code class="event-code">{7}</code></td>'
    "<td>{8} {9}</td><td>{10}</td><td>{11}</td><td><code>{12}</code></td>"
    '<td><code class="hash" title="{13}">{14}</code></td></tr>'
)
_OUTCOME = choice_labels(AuditEvent, "outcome")
EMPTY = format_html('<tr><td colspan="10" class="empty">{}</td></tr>', "No audit events match.")


def _cells(event: AuditRow, request_id, short_hash) -> tuple:
    at = template_localtime(event.created_at)
    return (
        event.outcome.lower(),
        event.sequence,
        date_text(at, "c"),
        date_text(at, "Y-m-d H:i:s T"),
        event.username or "—",
        event.role or "—",
        event_label(event.action, "subject"),
        event.action,
        event.object_type,
        event.object_id,
        _OUTCOME.get(event.outcome, event.outcome),
        event.ip_address or "—",
        request_id(event.request_id),
        event.hash,
        short_hash(event.hash),
    )


@register.simple_tag
def audit_rows(events: list[AuditRow]) -> SafeString:
    """One ``<tr>`` per event of a page (``compliance.selectors.AuditRow``), or a row saying none
    match."""
    if not events:
        return EMPTY
    # The ellipsis in the language of this request, looked up once for the page.
    request_id, short_hash = shortener(12), shortener(13)
    return html_join("\n", _ROW, (_cells(event, request_id, short_hash) for event in events))
