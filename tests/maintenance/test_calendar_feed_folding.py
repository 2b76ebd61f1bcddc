"""The feed folds its lines itself (icalendar's folding, a character at a time, was most
of a large feed's time): the result must be icalendar's, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar, Event
from icalendar.parser import _foldline

from maintenance.calendar_feed import fold, to_ical

# Backslashes and carets are where icalendar moves a fold; the rest is filler. Mostly
# ASCII lines, as the feed's are (the path that slices), some not.
ASCII = "ab \\^,;\n"
TEXT = st.one_of(
    st.text(alphabet=ASCII, max_size=400), st.text(alphabet=ASCII + "é✓日", max_size=400)
)


@given(TEXT.map(lambda t: t.replace("\n", "")))
def test_it_folds_a_line_as_icalendar_does(line):
    assert fold(line) == _foldline(line)


@given(st.lists(TEXT, max_size=5))
def test_it_renders_a_calendar_as_icalendar_does(descriptions):
    cal = Calendar()
    cal.add("prodid", "-//bench//EN")
    cal.add("version", "2.0")
    for n, description in enumerate(descriptions):
        event = Event()
        event.add("uid", f"window-{n}@example.org")
        event.add("dtstart", datetime(2026, 12, 2, 1, tzinfo=UTC))
        event.add("summary", description[:80])
        event.add("description", description)
        cal.add_component(event)
    assert to_ical(cal) == cal.to_ical()


def test_it_moves_a_fold_off_an_escape():
    line = "x" * 73 + "\\," + "y" * 10
    assert fold(line) == _foldline(line) == "x" * 73 + "\r\n \\," + "y" * 10
