"""Reads for the calendar, the iCalendar feed and the window approval partial. Each
answers in a fixed number of queries, however many windows and changes there are."""

from __future__ import annotations

import calendar as pycalendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from django.db.models import Prefetch

from changes.access import changes_visible_to
from maintenance.blackout import blackout_days
from maintenance.models import (
    CalendarFeedToken,
    MaintenancePolicy,
    MaintenanceWindow,
    ScheduledChange,
    WindowType,
)

RESTRICTED = "Change (restricted)"


@dataclass(frozen=True)
class ChangeEntry:
    """A change in a window as this viewer may see it: restricted ones carry no title."""

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
    """Windows starting in [start, end), each with its scheduled changes (two queries)."""
    slots = ScheduledChange.objects.select_related("change")
    return list(
        MaintenanceWindow.objects.filter(start__gte=start, start__lt=end)
        .prefetch_related(Prefetch("scheduled_changes", queryset=slots.order_by("position")))
        .order_by("start", "pk")
    )


def window_entries(user, windows: Iterable[MaintenanceWindow]) -> list[WindowEntry]:
    """Pair each window with its changes, hiding the titles this user may not see."""
    windows = list(windows)
    change_ids = {slot.change_id for w in windows for slot in w.scheduled_changes.all()}
    visible: set[int] = set()
    if change_ids:
        visible = set(
            changes_visible_to(user).filter(pk__in=change_ids).values_list("pk", flat=True)
        )
    entries = []
    for window in windows:
        changes = []
        for slot in window.scheduled_changes.all():
            seen = slot.change_id in visible
            changes.append(
                ChangeEntry(
                    public_id=slot.change.public_id if seen else "",
                    title=slot.change.title if seen else "",
                    url=slot.change.get_absolute_url() if seen else "",
                    planned_start=slot.planned_start,
                    planned_minutes=slot.planned_minutes,
                    visible=seen,
                )
            )
        entries.append(WindowEntry(window=window, changes=changes))
    return entries


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def calendar_days(*, user, first: date, last: date, tz: tzinfo, today: date, period) -> list:
    """Every day in [first, last] with its windows (by local start date) and blackout."""
    windows = windows_between(_local_midnight(first, tz), _local_midnight(last + timedelta(1), tz))
    policy = routine_policy()
    blackouts = blackout_days(first, last, policy) if policy else {}
    days = {}
    day = first
    while day <= last:
        days[day] = CalendarDay(
            day=day, in_period=period(day), is_today=day == today, blackout=blackouts.get(day)
        )
        day += timedelta(days=1)
    for entry in window_entries(user, windows):
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
