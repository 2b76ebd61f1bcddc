"""Where an approved change may go: the rules a slot must meet, and the next valid one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.db.models import Sum
from django.utils import timezone

from changes.models import Category, ChangeRequest
from maintenance.blackout import blackout_reason
from maintenance.models import MaintenancePolicy, MaintenanceWindow, ScheduledChange, WindowType


@dataclass(frozen=True)
class Slot:
    window: MaintenanceWindow
    position: int
    planned_start: datetime
    planned_minutes: int


def used_minutes(window: MaintenanceWindow, *, excluding: ChangeRequest | None = None) -> int:
    qs = ScheduledChange.objects.filter(window=window)
    if excluding is not None:
        qs = qs.exclude(change=excluding)
    return qs.aggregate(total=Sum("planned_minutes"))["total"] or 0


def proposed_slot(change: ChangeRequest, window: MaintenanceWindow) -> Slot:
    """Changes in a window run one after another, in the order they were scheduled."""
    used = used_minutes(window, excluding=change)
    count = ScheduledChange.objects.filter(window=window).exclude(change=change).count()
    return Slot(
        window=window,
        position=count + 1,
        planned_start=window.start + timedelta(minutes=used),
        planned_minutes=change.window_minutes,
    )


def refusals(
    change: ChangeRequest, window: MaintenanceWindow, *, now: datetime | None = None
) -> list[str]:
    """Every reason this window cannot take this change; empty when it can."""
    now = now or timezone.now()
    reasons: list[str] = []
    if window.status not in (MaintenanceWindow.Status.PLANNED,):
        reasons.append(f"The window is {window.get_status_display().lower()}.")
    if window.start <= now:
        reasons.append("The window has already started.")
    if change.category == Category.STANDARD and window.type != WindowType.ROUTINE:
        reasons.append("A Standard change goes into a routine window only.")
    # Blackout dates belong to the routine schedule (seed: ROUTINE.blackoutDates); an
    # emergency window is approved by the CTO and the Head of Security instead.
    policy = MaintenancePolicy.objects.filter(type=window.type).first()
    if policy is not None and window.type == WindowType.ROUTINE:
        why = blackout_reason(window.start.date(), policy)
        if why and not change.blackout_exception:
            reasons.append(f"The window is blacked out ({why}).")
    free = window.duration_minutes - used_minutes(window, excluding=change)
    if change.window_minutes > free:
        reasons.append(
            f"Not enough capacity: the change needs {change.window_minutes} minutes, the "
            f"window has {max(free, 0)} left."
        )
    else:
        slot = proposed_slot(change, window)
        clash = _overlapping(change, slot)
        if clash:
            reasons.append(
                f"Overlaps {clash.change.public_id} on the same component "
                f"({clash.planned_start:%Y-%m-%d %H:%M}–{clash.planned_end:%H:%M} UTC)."
            )
    return reasons


def _overlapping(change: ChangeRequest, slot: Slot) -> ScheduledChange | None:
    component_ids = list(change.components.values_list("pk", flat=True))
    end = slot.planned_start + timedelta(minutes=slot.planned_minutes)
    candidates = (
        ScheduledChange.objects.filter(change__components__in=component_ids, planned_start__lt=end)
        .exclude(change=change)
        .select_related("change")
        .distinct()
    )
    for other in candidates:
        if other.planned_end > slot.planned_start:
            return other
    return None


def allowed_types(change: ChangeRequest) -> list[str]:
    if change.category == Category.STANDARD:
        return [WindowType.ROUTINE]
    return [WindowType.EMERGENCY, WindowType.ROUTINE]


def next_valid_window(
    change: ChangeRequest, *, now: datetime | None = None, horizon: int = 60
) -> MaintenanceWindow | None:
    """The first window that takes this change: from a day before its proposed start
    if one is free then, else the earliest from now on."""
    now = now or timezone.now()
    base = MaintenanceWindow.objects.filter(
        status=MaintenanceWindow.Status.PLANNED, type__in=allowed_types(change)
    ).order_by("start")
    preferred = max(now, change.proposed_start - timedelta(days=1))
    for earliest in (preferred, now):
        for window in base.filter(start__gt=earliest)[:horizon]:
            if not refusals(change, window, now=now):
                return window
    return None


def upcoming_windows(
    change: ChangeRequest, *, now: datetime | None = None, limit: int = 20
) -> list[tuple[MaintenanceWindow, list[str]]]:
    now = now or timezone.now()
    windows = MaintenanceWindow.objects.filter(
        status=MaintenanceWindow.Status.PLANNED, start__gt=now, type__in=allowed_types(change)
    ).order_by("start")[:limit]
    return [(w, refusals(change, w, now=now)) for w in windows]


PROPOSAL_LEAD = timedelta(days=2)


def next_routine_start(now: datetime, *, lead: timedelta = PROPOSAL_LEAD) -> datetime:
    """When a change drafted now (an index, a configuration set, a security update) is
    proposed to start: the next planned routine window at least ``lead`` ahead, or, if
    none is open yet, the Sunday 01:00 UTC the routine schedule will bring."""
    earliest = now + lead
    window = (
        MaintenanceWindow.objects.filter(
            type=WindowType.ROUTINE, status=MaintenanceWindow.Status.PLANNED, start__gte=earliest
        )
        .order_by("start")
        .first()
    )
    if window is not None:
        return window.start
    day = earliest.astimezone(UTC).date()
    while True:
        start = datetime.combine(day, time(1, 0), tzinfo=UTC)
        if day.weekday() == 6 and start >= earliest:
            return start
        day += timedelta(days=1)
