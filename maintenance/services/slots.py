"""Placing an approved change in a window (a slot), and taking it out again."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from changes import services as change_services
from changes.models import ChangeRequest
from maintenance import scheduling
from maintenance.models import MaintenanceWindow, ScheduledChange
from portal.errors import AuditInfo, Conflict, Invalid
from portal.transactions import service


@service
def slot_create(
    *, change: ChangeRequest, window: MaintenanceWindow, by, now: datetime | None = None
) -> ScheduledChange:
    """Schedule a change into a window: the change's rules first (an operator, an
    approved change), then the window's (capacity, blackout, type, overlaps)."""
    now = now or timezone.now()
    locked_window = MaintenanceWindow.objects.select_for_update().get(pk=window.pk)
    locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
    if ScheduledChange.objects.filter(change=locked).exists():
        raise Conflict(f"{locked.public_id} is already scheduled; unschedule it first.")
    reasons = scheduling.refusals(locked, locked_window, now=now)
    slot = scheduling.proposed_slot(locked, locked_window)
    change_services.change_schedule(
        change=locked,
        by=by,
        details={
            "window": locked_window.pk,
            "planned_start": slot.planned_start.isoformat(),
        },
        subject=f"{locked.public_id} scheduled for {slot.planned_start:%Y-%m-%d %H:%M} UTC",
    )
    if reasons:
        raise Invalid(
            " ".join(reasons),
            audit=_audit(by, locked, locked_window),
        )
    return ScheduledChange.objects.create(
        window=locked_window,
        change=locked,
        position=slot.position,
        planned_start=slot.planned_start,
        planned_minutes=slot.planned_minutes,
        scheduled_by=by,
    )


def _audit(by, change: ChangeRequest, window: MaintenanceWindow) -> AuditInfo:
    return AuditInfo(
        user=by, action="change.schedule_refused", obj=change, details={"window": window.pk}
    )


@service
def slot_remove(*, change: ChangeRequest, by, reason: str = "") -> ChangeRequest:
    locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
    slot = ScheduledChange.objects.select_for_update().filter(change=locked).first()
    window_id = slot.window_id if slot else None
    unscheduled = change_services.change_unschedule(
        change=locked, by=by, reason=reason, details={"window": window_id}
    )
    if slot is not None:
        slot.delete()
    return unscheduled
