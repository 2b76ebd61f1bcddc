"""The feed writes its iCalendar text itself (icalendar's components, a property type
and a character at a time, were most of a large feed's time): its escaping and folding
must be what icalendar writes, and what it writes must read back through icalendar's
parser as the text it started from."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar
from icalendar.parser import _foldline
from icalendar.prop import vText

from maintenance.calendar_feed import _text, fold

# Backslashes and carets are where icalendar moves a fold; the rest is filler. Mostly
# ASCII lines, as the feed's are (the path that slices), some not.
ASCII = "ab \\^,;\n"
TEXT = st.one_of(
    st.text(alphabet=ASCII, max_size=400), st.text(alphabet=ASCII + "é✓日", max_size=400)
)
# Titles and descriptions as people type them, line breaks of every kind included.
TYPED = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r")
    | st.sampled_from('\\;,:"\n^N'),
    max_size=300,
)


@given(TEXT.map(lambda t: t.replace("\n", "")))
def test_it_folds_a_line_as_icalendar_does(line):
    assert fold(line) == _foldline(line)


def test_it_moves_a_fold_off_an_escape():
    line = "x" * 73 + "\\," + "y" * 10
    assert fold(line) == _foldline(line) == "x" * 73 + "\r\n \\," + "y" * 10


@given(TYPED.filter(lambda t: "\\N" not in t))
def test_it_escapes_text_as_icalendar_does(text):
    assert _text(text) == vText(text).to_ical().decode()


@given(TYPED)
def test_what_it_writes_reads_back_as_the_same_text(text):
    body = "\r\n".join(
        fold(line)
        for line in [
            "BEGIN:VCALENDAR",
            "BEGIN:VEVENT",
            "UID:window-1@change-portal",
            f"SUMMARY:{_text(text)}",
            f"DESCRIPTION:{_text(text)}",
            "END:VEVENT",
            "END:VCALENDAR",
        ]
    )
    event = Calendar.from_ical(body).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == str(event["DESCRIPTION"]) == text


def test_a_title_holding_a_backslash_n_keeps_it():
    # icalendar's own writer would turn it into a line break.
    assert _text("C:\\New folder") == "C:\\\\New folder"
