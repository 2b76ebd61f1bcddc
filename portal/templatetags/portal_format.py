"""How the portal words what it recorded: audit event codes become plain phrases, and
a field's stored values the labels of its choices.

One mapping for every page that shows events (a change's timeline, the execution
report, the audit trail), so a person reads "Procedure added", never
``change.procedure_added``. Codes without an entry are worded from their parts, so a
new event reads sensibly before anyone adds it here.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import date, datetime

from django import template
from django.utils.dateformat import format as date_format
from django.utils.dates import MONTHS
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import add_truncation_text, calculate_truncate_chars_length
from django.utils.translation import pgettext

register = template.Library()


def choice_labels(model, name: str) -> dict:
    """What ``get_<name>_display`` gives for each value of a field, built once, for the
    tags that write many rows (the method builds a dict of the choices on every call)."""
    return {value: str(label) for value, label in model._meta.get_field(name).flatchoices}


def shortener(length: int) -> Callable[[str], str]:
    """``truncatechars:length`` for the plain-ASCII ids the rows show (hashes, request
    ids), its translated ellipsis looked up once, in the language active at the call:
    Django's ``Truncator`` looks it up twice for each text, 5 ms of a page of the audit
    trail (100 ids). Not for text with combining characters, which it counts apart."""
    ellipsis = pgettext("String to return when truncating text", "%(truncated_text)s…")
    keep = calculate_truncate_chars_length(length, ellipsis)
    return lambda text: text if len(text) <= length else add_truncation_text(text[:keep], ellipsis)


def _date(v: date) -> str:
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}"


# The date filter's formats the row-writing tags use, written without building a
# ``DateFormat`` for each (65 µs a time, 3 ms of a 50-row page). Each writes what the
# filter writes, down to the zone's name ("T"): tests/portal/test_row_formatting.py
# compares them over every quarter hour of the year's daylight-saving changes.
_FORMATS: dict[str, Callable[[datetime], str]] = {
    "c": datetime.isoformat,
    "Y-m-d": _date,
    "j F Y": lambda v: f"{v.day} {MONTHS[v.month]} {v.year:04d}",
    "H:i": lambda v: f"{v.hour:02d}:{v.minute:02d}",
    "H:i T": lambda v: f"{v.hour:02d}:{v.minute:02d} {_zone(v)}",
    "Y-m-d H:i T": lambda v: f"{_date(v)} {v.hour:02d}:{v.minute:02d} {_zone(v)}",
    "Y-m-d H:i:s T": lambda v: f"{_date(v)} {v:%H:%M:%S} {_zone(v)}",
}


def _zone(v: datetime) -> str:
    # The date filter's "T": the zone's name for that time, but nothing for a wall time
    # the zone shows twice or never (a daylight-saving change), as DateFormat decides.
    zone = v.tzinfo
    if zone.utcoffset(v.replace(fold=not v.fold)) != zone.utcoffset(v):
        return ""
    return str(zone.tzname(v))


def date_text(value: date, fmt: str) -> str:
    """What ``value|date:fmt`` writes for one of ``_FORMATS``: of an aware datetime, or
    of a date for "Y-m-d" and "j F Y" (the month's name as the filter translates it)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return date_format(value, fmt)
    return _FORMATS[fmt](value)


def _escaped(value) -> str:
    # conditional_escape's own result for the two types rows are made of, without its
    # lazy-string and __html__ checks; every other value goes through it.
    kind = type(value)
    if kind is str:
        return html.escape(value)
    if kind is int:
        return str(value)
    return conditional_escape(value)


def html_format(template: str, *args) -> SafeString:
    """``format_html(template, *args)`` for the row-writing tags, which format a few
    thousand values a page: the same escaping (``html.escape`` of a plain string, as
    ``conditional_escape`` does; a safe string kept) at half the cost a value."""
    return mark_safe(template.format(*map(_escaped, args)))  # noqa: S308


def html_join(sep: str, template: str, rows) -> SafeString:
    """``format_html_join(sep, template, rows)`` by ``html_format``."""
    return mark_safe(conditional_escape(sep).join(html_format(template, *row) for row in rows))  # noqa: S308


# The object an event is about: the first part of its code.
SUBJECTS = {
    "access": "Access",
    "admin": "Admin",
    "approval": "Approval",
    "audit": "Audit trail",
    "auth": "Account",
    "calendar_feed": "Calendar feed",
    "change": "Change",
    "dbops": "Database",
    "evidence": "Evidence",
    "execution": "Execution",
    "export": "Export",
    "mfa": "Two-factor sign-in",
    "retention": "Retention",
    "run": "Run",
    "security": "Security update",
    "user": "User",
    "window": "Window",
    "worker": "Worker",
}

# Codes whose parts alone would read awkwardly.
LABELS = {
    "access.denied": "Access refused",
    "approval.approved": "Approved",
    "approval.rejected": "Rejected",
    "approval.refused": "Decision refused",
    "approval.hidden": "Hidden approval requested",
    "approval.escalated": "Escalated as overdue",
    "auth.login": "Signed in",
    "auth.logout": "Signed out",
    "auth.login_failed": "Sign-in failed",
    "auth.lockout": "Locked out after failed sign-ins",
    "auth.session_expired": "Session expired",
    # A change's own approval or rejection, told apart from one role's decision.
    "change.approved": "Change approved",
    "change.rejected": "Change rejected",
    "change.created": "Created",
    "change.updated": "Draft edited",
    "change.submitted": "Submitted for review",
    "change.review_started": "Review started",
    "change.review_reopened": "Review reopened",
    "change.reviewed": "Post-implementation review recorded",
    "change.corrective_action": "Corrective action recorded",
    "change.ratification_refused": "Ratification refused",
    "change.in_review": "In review",
    "change.in_progress": "In progress",
    "change.rolled_back": "Rolled back",
    "change.hidden": "Hidden change requested",
    "execution.issue": "Issue recorded",
    "execution.report_generated": "Report generated",
    "run.step_done": "Checklist step done",
    "run.stop_requested": "Stop requested",
    "user.timezone_set": "Time zone changed",
    "window.demo_opened": "Demo window opened",
    "worker.ping": "Worker answered",
}


def _words(part: str) -> str:
    return part.replace("_", " ").strip()


@register.filter
def event_label(code: object, with_subject: object = None) -> str:
    """``change.procedure_added`` → "Procedure added"; with an argument (any true
    value), the subject leads: "Change: procedure added" (for lists of mixed objects)."""
    code = str(code or "")
    if not code:
        return ""
    head, _, rest = code.partition(".")
    if code in LABELS:
        phrase = LABELS[code]
    elif rest:
        # dbops.target.check_refused → "target check refused"
        phrase = " ".join(_words(p) for p in rest.split(".") if p)
    else:
        phrase = _words(head)
    phrase = phrase[:1].upper() + phrase[1:]
    if with_subject and rest:
        subject = SUBJECTS.get(head, _words(head).capitalize())
        return f"{subject}: {phrase[:1].lower()}{phrase[1:]}"
    return phrase
