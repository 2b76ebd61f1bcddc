"""Reads for the calendar, the iCalendar feed and the window approval partial. Each
answers in a fixed number of queries, however many windows and changes there are."""

from __future__ import annotations

import calendar as pycalendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import NamedTuple

from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    Field,
    IntegerField,
    OuterRef,
    Subquery,
    Value,
    Window,
)
from django.db.models.functions import RowNumber

from changes.access import change_visibility
from changes.models import ChangeRequest
from maintenance.blackout import blackout_days
from maintenance.models import (
    CalendarFeedToken,
    MaintenancePolicy,
    MaintenanceWindow,
    ScheduledChange,
    WindowType,
)
from portal.http import url_for_pk

RESTRICTED = "Change (restricted)"
# A day cell of the month lists a window's first changes and "+ N more" (its page and
# the week view list them all): a month is read at a glance, whatever a window holds.
MONTH_CHANGES_SHOWN = 5


class ChangeEntry(NamedTuple):
    """A change in a window as this viewer may see it: restricted ones carry no title.
    (A tuple: the feed builds one for every slot of eight months.)"""

    public_id: str
    title: str
    url: str
    planned_start: datetime
    planned_minutes: int
    visible: bool

    @property
    def label(self) -> str:
        return f"{self.public_id} {self.title}" if self.visible else RESTRICTED


@dataclass(frozen=True)
class WindowEntry:
    window: MaintenanceWindow
    changes: list[ChangeEntry]
    # Changes in the window not listed here (the month view lists the first few).
    more: int = 0


@dataclass
class CalendarDay:
    day: date
    in_period: bool
    is_today: bool
    blackout: str | None = None
    windows: list[WindowEntry] = field(default_factory=list)


def routine_policy() -> MaintenancePolicy | None:
    return MaintenancePolicy.objects.filter(type=WindowType.ROUTINE).first()


def windows_between(start: datetime, end: datetime) -> list[MaintenanceWindow]:
    """Windows starting in [start, end), with only what the calendar and feed show."""
    return list(
        MaintenanceWindow.objects.filter(start__gte=start, start__lt=end)
        .only("id", "type", "start", "duration_minutes", "status", "title")
        .order_by("start", "pk")
    )


def window_entries(
    user, start: datetime, end: datetime, *, per_window: int | None = None
) -> list[WindowEntry]:
    """The windows starting in [start, end), each with its changes, hiding the titles
    this user may not see: one query of plain values (window, change id and title,
    times, and whether the user may see the change, decided in the query by the change
    list's own rule). With ``per_window``, only each window's first changes are read,
    and how many more.

    The slots are found through the windows' start, as the windows were: by a list of
    window ids PostgreSQL cannot tell how few changes they hold, and at 100,000 changes
    it hashed every change for the feed's 8,000 slots rather than looking each up."""
    windows = windows_between(start, end)
    if not windows:
        return []
    visible = change_visibility(user, path="change__")
    seen = Value(True) if visible is None else ExpressionWrapper(visible, BooleanField())
    slots = ScheduledChange.objects.filter(window__start__gte=start, window__start__lt=end)
    if per_window is None:
        # A plain Field: no converter to call on every row.
        rows = slots.annotate(total=Value(None, Field()))
    else:
        # The first slots of each window are picked from the slots alone, and only they
        # are joined to their change and judged visible (a month shows 5 of 36 a window).
        first = slots.annotate(
            n=Window(RowNumber(), partition_by=[F("window_id")], order_by=[F("position"), F("pk")])
        ).filter(n__lte=per_window)
        # COUNT(*), not of the id: the window index alone answers it (an index-only scan,
        # 350 buffers for a month at 100,000 changes instead of 2,600 heap reads).
        in_window = (
            ScheduledChange.objects.filter(window_id=OuterRef("window_id"))
            .order_by()
            .values("window_id")
            .annotate(n=Count("*"))
            .values("n")
        )
        # Read through the windows too: by the ids alone the planner, not knowing how
        # few there are, scanned every slot.
        rows = slots.filter(pk__in=first.values("pk")).annotate(
            total=Subquery(in_window, output_field=IntegerField())
        )
    rows = rows.annotate(seen=seen).order_by("window_id", "position").values_list(
        "window_id", "change_id", "change__title", "planned_start", "planned_minutes", "seen",
        "total",
    )  # fmt: skip
    change_url = url_for_pk("changes:detail")
    by_window: dict[int, list[ChangeEntry]] = {w.pk: [] for w in windows}
    totals: dict[int, int] = {}
    for window_id, change_id, title, planned_start, planned_minutes, shown, total in rows:
        totals[window_id] = total or 0
        if shown:
            entry = ChangeEntry(
                ChangeRequest.public_id_of(change_id),
                title,
                change_url(change_id),
                planned_start,
                planned_minutes,
                True,
            )
        else:
            entry = ChangeEntry("", "", "", planned_start, planned_minutes, False)
        by_window[window_id].append(entry)
    return [
        WindowEntry(
            window=w,
            changes=by_window[w.pk],
            more=max(totals.get(w.pk, 0) - len(by_window[w.pk]), 0),
        )
        for w in windows
    ]


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def calendar_days(
    *,
    user,
    first: date,
    last: date,
    tz: tzinfo,
    today: date,
    period,
    per_window: int | None = None,
) -> list:
    """Every day in [first, last] with its windows (by local start date) and blackout."""
    policy = routine_policy()
    blackouts = blackout_days(first, last, policy) if policy else {}
    days = {}
    day = first
    while day <= last:
        days[day] = CalendarDay(
            day=day, in_period=period(day), is_today=day == today, blackout=blackouts.get(day)
        )
        day += timedelta(days=1)
    start, end = _local_midnight(first, tz), _local_midnight(last + timedelta(1), tz)
    for entry in window_entries(user, start, end, per_window=per_window):
        local = entry.window.start.astimezone(tz).date()
        if local in days:
            days[local].windows.append(entry)
    return list(days.values())


def month_calendar(*, user, year: int, month: int, tz: tzinfo, today: date) -> dict:
    weeks = pycalendar.Calendar(firstweekday=0).monthdatescalendar(year, month)
    days = calendar_days(
        user=user,
        first=weeks[0][0],
        last=weeks[-1][-1],
        tz=tz,
        today=today,
        period=lambda d: d.month == month,
        per_window=MONTH_CHANGES_SHOWN,
    )
    first_of_month = date(year, month, 1)
    return {
        "month": first_of_month,
        "weeks": [days[i : i + 7] for i in range(0, len(days), 7)],
        "previous": (first_of_month - timedelta(days=1)).replace(day=1),
        "next": (first_of_month + timedelta(days=32)).replace(day=1),
        "blackout_count": sum(1 for d in days if d.blackout and d.in_period),
        "window_count": sum(len(d.windows) for d in days if d.in_period),
    }


def week_calendar(*, user, day: date, tz: tzinfo, today: date) -> dict:
    monday = day - timedelta(days=day.weekday())
    sunday = monday + timedelta(days=6)
    days = calendar_days(
        user=user, first=monday, last=sunday, tz=tz, today=today, period=lambda d: True
    )
    return {
        "monday": monday,
        "sunday": sunday,
        "days": days,
        "previous": monday - timedelta(days=7),
        "next": monday + timedelta(days=7),
    }


def active_feed_token(user) -> CalendarFeedToken | None:
    return (
        CalendarFeedToken.objects.filter(user=user, revoked_at__isnull=True)
        .order_by("-created_at", "-pk")
        .first()
    )
