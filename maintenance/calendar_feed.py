"""The per-user iCalendar feed: the calendar page's windows, changes and blackout days
as RFC 5545 events that Outlook, Google Calendar and Apple Calendar subscribe to."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from icalendar.parser import _foldline

from maintenance.blackout import blackout_days
from maintenance.calendar_selectors import (
    WindowEntry,
    routine_policy,
    window_entries,
)
from maintenance.models import MaintenanceWindow, WindowType
from portal.audit import chain_head
from portal.http import url_for_pk

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


def _text(value: str) -> str:
    """An RFC 5545 TEXT value (3.3.11): backslash, semicolon and comma escaped, every
    line break written as ``\\n``. (icalendar also turns a literal ``\\N`` in the text
    into a line break; a title keeps it here.)"""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _utc(moment: datetime) -> str:
    """A DATE-TIME in UTC form (RFC 5545 3.3.5, "form #2")."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


_KINDS = dict(WindowType.choices)
_STATES = {status: label.lower() for status, label in MaintenanceWindow.Status.choices}


def _window_event(entry: WindowEntry, stamp: str, window_url: str) -> list[str]:
    window = entry.window
    kind = _KINDS.get(window.type, window.type)
    state = _STATES.get(window.status, window.status)
    summary = SUMMARIES.get(window.type, f"{kind} maintenance window")
    if window.status != MaintenanceWindow.Status.PLANNED:
        summary += f" ({state})"
    lines = [f"{kind} window, {window.duration_minutes} minutes, {state}.", ""]
    if entry.changes:
        lines.append("Scheduled changes:")
        for change in entry.changes:
            start = change.planned_start
            if start.tzinfo is not UTC:
                start = start.astimezone(UTC)
            # Hour and minute by hand: strftime would be most of this line's time.
            lines.append(
                f"- {change.label} ({start.hour:02}:{start.minute:02} UTC, "
                f"{change.planned_minutes} min)"
            )
    else:
        lines.append("No changes scheduled yet.")
    lines += ["", window_url]
    description = "\n".join(lines)
    return [
        "BEGIN:VEVENT",
        f"UID:window-{window.pk}@{UID_DOMAIN}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{_utc(window.start)}",
        f"DTEND:{_utc(window.end)}",
        f"SUMMARY:{_text(summary)}",
        f"CATEGORIES:{_text(kind)},Maintenance",
        f"DESCRIPTION:{_text(description)}",
        f"URL:{window_url}",
        f"STATUS:{_STATUS.get(window.status, 'CONFIRMED')}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
    ]


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


def _blackout_event(first: date, last: date, reason: str, stamp: str) -> list[str]:
    description = (
        f"No routine maintenance window opens on these days ({reason}). "
        "Changes need a blackout exception."
    )
    return [
        "BEGIN:VEVENT",
        f"UID:blackout-{first:%Y%m%d}@{UID_DOMAIN}",
        f"DTSTAMP:{stamp}",
        f"DTSTART;VALUE=DATE:{first:%Y%m%d}",
        # An all-day DTEND is exclusive.
        f"DTEND;VALUE=DATE:{last + timedelta(days=1):%Y%m%d}",
        f"SUMMARY:{_text('Blackout: ' + reason)}",
        "CATEGORIES:Blackout",
        f"DESCRIPTION:{_text(description)}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
    ]


def fold(line: str) -> str:
    """RFC 5545 folding exactly as icalendar's own (74 octets a piece, a backslash or
    caret kept with the character after it), by slices when the line is ASCII, as nearly
    every line of the feed is: icalendar encodes each character to count it."""
    if not line.isascii():
        return _foldline(line)
    if len(line) <= 74:
        return line
    pieces = []
    start, n = 0, len(line)
    while n - start > 74:
        end = start + 74
        if line[end - 1] in "\\^" and end - 1 > start:
            end -= 1
        pieces.append(line[start:end])
        start = end
    pieces.append(line[start:])
    return "\r\n ".join(pieces)


# The calendar's own properties, the same on every fetch.
_HEADER = [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    f"PRODID:{_text(PRODID)}",
    "CALSCALE:GREGORIAN",
    "METHOD:PUBLISH",
    f"X-WR-CALNAME:{_text(CALNAME)}",
    f"X-WR-CALDESC:{_text('Maintenance windows, scheduled changes and blackout days.')}",
    "X-WR-TIMEZONE:UTC",
    "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
    "X-PUBLISHED-TTL:PT1H",
]


def feed_render(*, user, now: datetime | None = None, base_url: str | None = None) -> bytes:
    """The feed for one user: only the change titles they may see are named. Links start
    with ``base_url`` (the address the feed was fetched at), else PORTAL_BASE_URL.

    The text is written directly, line by line, rather than through icalendar's
    components, whose per-property type handling was most of a large feed's time; the
    tests read every feed back with icalendar's parser."""
    base_url = (base_url or settings.PORTAL_BASE_URL).rstrip("/")
    now = now or timezone.now()
    stamp = _utc(now.replace(microsecond=0))
    lines = list(_HEADER)
    window_url = url_for_pk("maintenance:window")
    for entry in window_entries(user, now - PAST, now + AHEAD):
        lines += _window_event(entry, stamp, base_url + window_url(entry.window.pk))
    policy = routine_policy()
    if policy is not None:
        first_day = (now - PAST).date()
        days = blackout_days(first_day - RUN_LOOKBACK, (now + AHEAD).date(), policy)
        for first, last, reason in _blackout_runs(days):
            if last >= first_day:
                lines += _blackout_event(first, last, reason, stamp)
    lines.append("END:VCALENDAR")
    return ("\r\n".join(map(fold, lines)) + "\r\n").encode()


# --- the cache: one rendered feed per user, per state of the portal ---------------------

# A rendered feed is kept this long at most: what time alone changes (the range moving,
# a delegation running out before beat ends it) shows within it. It is the max-age the
# feed's response already gives calendar apps.
CACHE_SECONDS = 300
# Feeds kept per process, by size (a feed of 8,000 changes is about a megabyte).
CACHE_BYTES = 32 * 1024 * 1024


class FeedCache:
    """Rendered feeds by (user, audit chain head, base URL), oldest dropped first.

    Every write the portal makes is a service that records an audit row in the same
    transaction (a window opened, a change scheduled or moved, an approval decided or
    delegated, a tenant or role granted in the admin), so the chain head moves with
    every fact a feed shows: a feed cached at one head is exactly the feed at that head.
    Reading the head is one index probe; per process, so nothing is shared to go stale.
    """

    def __init__(self, *, max_bytes: int = CACHE_BYTES, seconds: float = CACHE_SECONDS):
        self.max_bytes = max_bytes
        self.seconds = seconds
        self._items: OrderedDict[tuple, tuple[float, bytes, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] < time.monotonic():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return item[1], item[2]

    def put(self, key: tuple, body: bytes, etag: str) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (time.monotonic() + self.seconds, body, etag)
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._items)))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def _drop(self, key: tuple) -> None:
        _, body, _ = self._items.pop(key)
        self._bytes -= len(body)


feed_cache = FeedCache()


def feed_for(*, user, base_url: str | None = None) -> tuple[bytes, str]:
    """The user's feed and its ETag: rendered once per state of the portal (the audit
    chain head), then served from this process's cache."""
    base_url = (base_url or settings.PORTAL_BASE_URL).rstrip("/")
    sequence, head = chain_head()
    key = (user.pk, sequence, head, base_url)
    cached = feed_cache.get(key)
    if cached is not None:
        return cached
    body = feed_render(user=user, base_url=base_url)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    feed_cache.put(key, body, etag)
    return body, etag
