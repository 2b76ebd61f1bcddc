"""The row-writing tags format with ``portal_format``'s helpers rather than Django's
``format_html``, ``DateFormat`` and ``Truncator`` (for speed): they must write exactly
what those write, hostile text and daylight-saving changes included."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation
from django.utils.dateformat import format as date_format
from django.utils.functional import lazy
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from portal.templatetags.portal_format import _FORMATS, date_text, html_format, html_join, shortener

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Adelaide",  # half-hour offset, southern summer time
    "Asia/Kolkata",  # no daylight saving
    "Pacific/Chatham",  # 45-minute offset
]


def _instants():
    """Every 15 minutes across 2026's daylight-saving changes (the US on 8 March and 1
    November, Europe on 29 March and 25 October, South Australia on 5 April and 4
    October), and a few ordinary times."""
    for day in (datetime(2026, 3, 8), datetime(2026, 3, 29), datetime(2026, 4, 5)):
        start = day.replace(tzinfo=UTC) - timedelta(hours=18)
        yield from (start + timedelta(minutes=15 * i) for i in range(36 * 4))
    for day in (datetime(2026, 10, 4), datetime(2026, 10, 25), datetime(2026, 11, 1)):
        start = day.replace(tzinfo=UTC) - timedelta(hours=18)
        yield from (start + timedelta(minutes=15 * i) for i in range(36 * 4))
    yield from (
        datetime(2026, 11, 1, 5, 59, 59, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 1, 123456, tzinfo=UTC),
        datetime(2027, 1, 1, 0, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize("zone", ZONES)
def test_times_are_written_as_the_date_filter_writes_them(zone):
    tz = ZoneInfo(zone)
    checked = ambiguous = 0
    for instant in _instants():
        local = instant.astimezone(tz)
        for fmt in _FORMATS:
            assert date_text(local, fmt) == date_format(local, fmt), (zone, local, fmt)
            checked += 1
        ambiguous += date_format(local, "T") == ""
    assert checked > 4000
    if zone in ("America/New_York", "Europe/London", "Australia/Adelaide"):
        # The sweep crosses a fall-back hour, where the date filter writes no zone name.
        assert ambiguous >= 4


def test_days_are_written_as_the_date_filter_writes_them():
    first = date(2026, 1, 1)
    for day in (first + timedelta(days=n) for n in range(400)):
        for fmt in ("Y-m-d", "j F Y"):
            assert date_text(day, fmt) == date_format(day, fmt)


def test_month_names_are_the_date_filters_in_the_active_language():
    day = date(2026, 12, 7)
    with translation.override("de"):
        assert date_text(day, "j F Y") == date_format(day, "j F Y")
        german = date_text(day, "j F Y")
    assert german == "7 Dezember 2026" and date_text(day, "j F Y") == "7 December 2026"


def test_a_time_without_a_zone_is_left_to_the_date_filter():
    naive = datetime(2026, 12, 7, 9, 30)
    assert date_text(naive, "Y-m-d H:i T") == date_format(naive, "Y-m-d H:i T")


@pytest.mark.parametrize("length", [12, 13, 1, 64, 65])
def test_ids_are_shortened_as_truncatechars_shortens_them(length):
    shorten = shortener(length)
    samples = [
        hashlib.sha256(b"portal").hexdigest(),
        uuid.UUID(int=7).hex,
        "",
        "short",
        "exactly-12ch",
        "x" * length,
        "x" * (length + 1),
    ]
    for text in samples:
        assert shorten(text) == Truncator(text).chars(length), (text, length)


class _Marked:
    def __html__(self) -> str:
        return "<b>marked</b>"

    def __str__(self) -> str:
        return "<not this>"


HOSTILE_VALUES = [
    "<script>alert('x')</script>",
    "\"quoted\" & 'single' <tag> &amp;",
    "",
    "ünïcödé — “quotes” ‹›",
    mark_safe("<em>already safe</em>"),
    SafeString("<i>safe too</i>"),
    lazy(lambda: "<lazy & 'text'>", str)(),
    _Marked(),
    7,
    -3,
    True,
    None,
    2.5,
    Decimal("10.50"),
    type("Sub", (str,), {})("<subclass of str>"),
]


def test_values_are_escaped_as_format_html_escapes_them():
    template = '<td class="{0}">{1}</td><td title="{1}">{0}</td>'
    for first in HOSTILE_VALUES:
        for second in HOSTILE_VALUES:
            expected = format_html(template, first, second)
            written = html_format(template, first, second)
            assert written == expected, (first, second)
            assert isinstance(written, SafeString)


def test_rows_are_joined_as_format_html_join_joins_them():
    rows = [(value, index) for index, value in enumerate(HOSTILE_VALUES)]
    for sep in ("", "\n", "<br>", mark_safe("<hr>")):
        assert html_join(sep, "<li>{}: {}</li>", rows) == format_html_join(
            sep, "<li>{}: {}</li>", rows
        )
    assert html_join("", "{}", []) == ""
