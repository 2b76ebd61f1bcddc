"""The calendar's windows, their lists of changes and the month's days, written here
rather than by template loops: the month view shows 42 days, about 50 windows and 175
changes at a time, the week view a few hundred changes, and the template engine took
about a quarter of a millisecond for each change and more for each window and day: the
month page was five times the floor (issue 13). Every value passes through
``format_html``'s escaping (by ``portal_format.html_format``), as a template's would,
and times are written in the viewer's zone as the date filter writes them."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime

from maintenance.calendar_selectors import RESTRICTED, CalendarDay, ChangeEntry, WindowEntry
from maintenance.models import MaintenanceWindow
from portal.http import url_for_pk
from portal.templatetags.portal_format import choice_labels, date_text, html_format, html_join

register = template.Library()

_WINDOW = (
    '<div class="cal-window type-{0} wstatus-{1}" data-testid="window-{2}">\n'
    '  <a href="{3}"><time datetime="{4}">{5}–{6}</time> {7}</a>\n'
    '  <span class="state wstate-{1}">{8}</span>\n'
    "  {9}\n"
    "</div>"
)
_DAY = (
    '<td class="day{0}" data-date="{1}">\n'
    '          <a class="day-number" href="{2}?date={1}" hx-get="{2}?date={1}" '
    'hx-target="#calendar" hx-swap="outerHTML" hx-push-url="true" '
    'aria-label="Week of {3}">{4}</a>\n'
    "          {5}\n"
    "          {6}\n"
    "        </td>"
)


_TYPE, _STATUS = (choice_labels(MaintenanceWindow, name) for name in ("type", "status"))


def _item(change: ChangeEntry, detailed: bool) -> tuple[SafeString]:
    if change.visible:
        name = html_format(
            '<a href="{0}">{1}</a> <a class="title" href="{0}">{2}</a>',
            change.url,
            change.public_id,
            change.title,
        )
    else:
        name = html_format('<span class="muted">{}</span>', RESTRICTED)
    if detailed:
        # The times as the date filter writes them: in the viewer's zone.
        start = template_localtime(change.planned_start)
        name = html_format(
            '<time datetime="{}">{}</time> {} <span class="muted">({} min)</span>',
            date_text(start, "c"),
            date_text(start, "H:i T"),
            name,
            change.planned_minutes,
        )
    return (name,)


@register.simple_tag
def calendar_changes(changes: list[ChangeEntry], detailed: bool = False) -> SafeString:
    """One ``<li>`` per change: its id and title linked, or "Change (restricted)"; with
    ``detailed`` (the week view) its planned start and minutes too."""
    return html_join("", "<li>{}</li>", (_item(change, detailed) for change in changes))


@register.simple_tag
def calendar_window(entry: WindowEntry, detailed: bool = False) -> SafeString:
    """A window's box: its times and type linked, its state, and its changes (the first
    few and how many more, in the month view; all with their times in the week view)."""
    return _window(entry, detailed, url_for_pk("maintenance:window"))


def _window(entry: WindowEntry, detailed: bool, url_of) -> SafeString:
    window = entry.window
    url = url_of(window.pk)
    start, end = template_localtime(window.start), template_localtime(window.end)
    if entry.changes:
        more = ""
        if entry.more:
            more = html_format(
                '<li class="more"><a href="{}" data-testid="more-changes">+ {} more</a></li>',
                url,
                entry.more,
            )
        changes = html_format(
            '<ul class="cal-changes">{}{}</ul>', calendar_changes(entry.changes, detailed), more
        )
    elif detailed:
        changes = html_format('<p class="muted">{}</p>', "No changes scheduled.")
    else:
        changes = ""
    return html_format(
        _WINDOW,
        window.type,
        window.status,
        window.pk,
        url,
        date_text(start, "c"),
        date_text(start, "H:i"),
        date_text(end, "H:i T"),
        _TYPE.get(window.type, window.type),
        _STATUS.get(window.status, window.status),
        changes,
    )


def _day_cell(day: CalendarDay, week_url: str, url_of) -> SafeString:
    classes = "".join(
        name
        for name, on in (
            (" other-period", not day.in_period),
            (" today", day.is_today),
            (" blackout", bool(day.blackout)),
        )
        if on
    )
    blackout = ""
    if day.blackout:
        blackout = html_format(
            '<div class="blackout-reason" data-testid="blackout">Blackout: {}</div>', day.blackout
        )
    return html_format(
        _DAY,
        classes,
        date_text(day.day, "Y-m-d"),
        week_url,
        date_text(day.day, "j F Y"),
        day.day.day,
        blackout,
        html_join("", "{}", ((_window(entry, False, url_of),) for entry in day.windows)),
    )


@register.simple_tag
def calendar_weeks(weeks: list[list[CalendarDay]], week_url: str) -> SafeString:
    """The month grid's rows: a cell a day, its number linking to its week, its blackout
    and its windows."""
    url_of = url_for_pk("maintenance:window")
    return html_join(
        "\n",
        "<tr>\n{}\n</tr>",
        (
            (html_join("\n", "{}", ((_day_cell(d, week_url, url_of),) for d in week)),)
            for week in weeks
        ),
    )
