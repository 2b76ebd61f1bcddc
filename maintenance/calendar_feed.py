"""The per-user iCalendar feed: the calendar page's windows, changes and blackout days
as RFC 5545 events that Outlook, Google Calendar and Apple Calendar subscribe to."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event

from maintenance.blackout import blackout_days
from maintenance.calendar_selectors import (
    WindowEntry,
    routine_policy,
    window_entries,
    windows_between,
)
from maintenance.models import MaintenanceWindow, WindowType

PRODID = "-//Change & Maintenance Portal//Maintenance calendar//EN"
CALNAME = "Change Portal maintenance"
UID_DOMAIN = "change-portal"
# What a subscription shows: recent history and everything planned months ahead.
PAST = timedelta(days=60)
AHEAD = timedelta(days=180)
# Blackout runs are read this far before the feed's first day, so a run the range cuts
# into keeps its first day, and with it its UID, from one fetch to the next.
RUN_LOOKBACK = timedelta(days=62)

SUMMARIES = {
    WindowType.ROUTINE: "Routine maintenance window",
    WindowType.EMERGENCY: "Emergency maintenance window",
}
_STATUS = {
    MaintenanceWindow.Status.PENDING_APPROVAL: "TENTATIVE",
    MaintenanceWindow.Status.CANCELLED: "CANCELLED",
    MaintenanceWindow.Status.REJECTED: "CANCELLED",
}


def _window_event(entry: WindowEntry, stamp: datetime, base_url: str) -> Event:
    window = entry.window
    summary = SUMMARIES.get(window.type, f"{window.get_type_display()} maintenance window")
    if window.status != MaintenanceWindow.Status.PLANNED:
        summary += f" ({window.get_status_display().lower()})"
    lines = [
        f"{window.get_type_display()} window, {window.duration_minutes} minutes, "
        f"{window.get_status_display().lower()}.",
        "",
    ]
    if entry.changes:
        lines.append("Scheduled changes:")
        for change in entry.changes:
            start = change.planned_start.astimezone(UTC)
            lines.append(f"- {change.label} ({start:%H:%M} UTC, {change.planned_minutes} min)")
    else:
        lines.append("No changes scheduled yet.")
    url = base_url + window.get_absolute_url()
    lines += ["", url]

    event = Event()
    event.add("uid", f"window-{window.pk}@{UID_DOMAIN}")
    event.add("dtstamp", stamp)
    event.add("dtstart", window.start.astimezone(UTC))
    event.add("dtend", window.end.astimezone(UTC))
    event.add("summary", summary)
    event.add("categories", [window.get_type_display(), "Maintenance"])
    event.add("description", "\n".join(lines))
    event.add("url", url)
    event.add("status", _STATUS.get(window.status, "CONFIRMED"))
    event.add("transp", "OPAQUE")
    return event


def _blackout_runs(days: dict[date, str]) -> list[tuple[date, date, str]]:
    """Consecutive days with the same reason as one (first, last, reason) run, so the
    three end-of-month days are one event rather than three."""
    runs: list[tuple[date, date, str]] = []
    for day in sorted(days):
        reason = days[day]
        if runs and runs[-1][2] == reason and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day, reason)
        else:
            runs.append((day, day, reason))
    return runs


def _blackout_event(first: date, last: date, reason: str, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", f"blackout-{first:%Y%m%d}@{UID_DOMAIN}")
    event.add("dtstamp", stamp)
    event.add("dtstart", first)
    event.add("dtend", last + timedelta(days=1))  # all-day DTEND is exclusive
    event.add("summary", f"Blackout: {reason}")
    event.add("categories", ["Blackout"])
    event.add(
        "description",
        f"No routine maintenance window opens on these days ({reason}). "
        "Changes need a blackout exception.",
    )
    event.add("transp", "TRANSPARENT")
    return event


def feed_render(*, user, now: datetime | None = None, base_url: str | None = None) -> bytes:
    """The feed for one user: only the change titles they may see are named. Links start
    with ``base_url`` (the address the feed was fetched at), else PORTAL_BASE_URL."""
    base_url = (base_url or settings.PORTAL_BASE_URL).rstrip("/")
    now = now or timezone.now()
    stamp = now.astimezone(UTC).replace(microsecond=0)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", CALNAME)
    cal.add("x-wr-caldesc", "Maintenance windows, scheduled changes and blackout days.")
    cal.add("x-wr-timezone", "UTC")
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")

    for entry in window_entries(user, windows_between(now - PAST, now + AHEAD)):
        cal.add_component(_window_event(entry, stamp, base_url))
    policy = routine_policy()
    if policy is not None:
        first_day = (now - PAST).date()
        days = blackout_days(first_day - RUN_LOOKBACK, (now + AHEAD).date(), policy)
        for first, last, reason in _blackout_runs(days):
            if last >= first_day:
                cal.add_component(_blackout_event(first, last, reason, stamp))
    return cal.to_ical()
