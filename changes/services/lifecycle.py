"""A change from approval to its outcome: scheduled, started, implemented, verified,
completed or failed (and rolled back). Maintenance calls these, passing what it knows
of the window or run as plain details; the change's state moves only here."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from changes import access
from changes.models import Approval, ChangeRequest, State
from changes.services.common import lock_change, notify_stakeholders, save_versioned
from portal.audit import audit_record
from portal.errors import Conflict, Invalid
from portal.models import AuditEvent
from portal.notifications import notify
from portal.roles import Role
from portal.transactions import service

RETROACTIVE_DUE_HOURS = 72


@service
def change_schedule(
    *, change: ChangeRequest, by, details: dict[str, Any], subject: str = ""
) -> ChangeRequest:
    """APPROVED → SCHEDULED; ``details`` say where (the window, the planned start)."""
    locked = lock_change(change.pk)
    access.require(by, locked, "schedule")
    locked.schedule()
    save_versioned(locked, ["state"])
    audit_record(
        action="change.scheduled", user=by, role=Role.OPERATIONS, obj=locked, details=details
    )
    if subject:
        notify_stakeholders(locked, subject=subject, key=f"scheduled:{details.get('window')}")
    return locked


@service
def change_unschedule(
    *, change: ChangeRequest, by, reason: str = "", details: dict[str, Any] | None = None
) -> ChangeRequest:
    locked = lock_change(change.pk)
    access.require(by, locked, "unschedule")
    locked.unschedule()
    save_versioned(locked, ["state"])
    audit_record(
        action="change.unscheduled",
        user=by,
        role=Role.OPERATIONS,
        obj=locked,
        details={**(details or {}), "reason": reason[:2000]},
    )
    notify_stakeholders(
        locked,
        subject=f"{locked.public_id} was unscheduled",
        key=f"unscheduled:{locked.version}",
    )
    return locked


@service
def change_start(
    *, change: ChangeRequest, by=None, details: dict[str, Any], now: datetime | None = None
) -> ChangeRequest:
    """SCHEDULED → IN_PROGRESS when its window runs it. ``by`` is the operator who
    started the window, or None when beat did."""
    locked = lock_change(change.pk)
    if by is not None:
        access.require(by, locked, "start", audit_action="change.start_refused")
    elif locked.state != State.SCHEDULED:
        raise Conflict(f"{locked.public_id} is {locked.get_state_display()}; it is not scheduled.")
    locked.start()
    locked.started_by = by
    save_versioned(locked, ["state", "started_by"])
    audit_record(action="change.started", user=by, obj=locked, details=details)
    return locked


@service
def change_implement(*, change: ChangeRequest, by, notes: str = "") -> ChangeRequest:
    """An operator marks a change without procedures implemented (done by hand)."""
    locked = lock_change(change.pk)
    access.require(by, locked, "implement")
    locked.implemented()
    locked.implemented_by = by
    save_versioned(locked, ["state", "implemented_by"])
    audit_record(
        action="change.implemented",
        user=by,
        role=Role.OPERATIONS,
        obj=locked,
        details={"notes": notes[:2000]},
    )
    return locked


@service
def change_verify(
    *, change: ChangeRequest, by, passed: bool, notes: str, now: datetime | None = None
) -> ChangeRequest:
    """An operator verifies a change implemented by hand: it completes or fails."""
    if not notes.strip():
        raise Invalid("Describe what you checked.")
    now = now or timezone.now()
    locked = lock_change(change.pk)
    access.require(by, locked, "verify")
    locked.verified_by = by
    save_versioned(locked, ["verified_by"])
    audit_record(
        action="change.verified" if passed else "change.verification_failed",
        user=by,
        role=Role.OPERATIONS,
        obj=locked,
        details={"notes": notes[:4000]},
        outcome=AuditEvent.Outcome.SUCCESS if passed else AuditEvent.Outcome.FAILURE,
    )
    if passed:
        return change_complete(change=locked, now=now)
    return change_fail(change=locked, rolled_back=False, now=now)


@service
def change_procedures_succeeded(
    *, change: ChangeRequest, procedures: int, now: datetime | None = None
) -> ChangeRequest:
    """Every procedure ran and verified itself: implemented, then completed."""
    locked = lock_change(change.pk)
    locked.implemented()
    save_versioned(locked, ["state"])
    audit_record(action="change.implemented", obj=locked, details={"procedures": procedures})
    return change_complete(change=locked, now=now)


@service
def change_complete(*, change: ChangeRequest, now: datetime | None = None) -> ChangeRequest:
    now = now or timezone.now()
    locked = lock_change(change.pk)
    locked.complete()
    locked.outcome = "SUCCESSFUL"
    locked.executed_at = now
    save_versioned(locked, ["state", "outcome", "executed_at"])
    audit_record(action="change.completed", obj=locked)
    _open_retroactive_reviews(locked, now=now)
    notify_stakeholders(locked, subject=f"{locked.public_id} completed", key="completed")
    return locked


@service
def change_fail(
    *, change: ChangeRequest, rolled_back: bool, now: datetime | None = None, reason: str = ""
) -> ChangeRequest:
    """IN_PROGRESS or VERIFYING → FAILED, then ROLLED_BACK when its procedures' rollback
    put everything back."""
    now = now or timezone.now()
    locked = lock_change(change.pk)
    locked.fail()
    locked.outcome = "FAILED"
    locked.executed_at = now
    save_versioned(locked, ["state", "outcome", "executed_at"])
    audit_record(
        action="change.failed",
        obj=locked,
        outcome=AuditEvent.Outcome.FAILURE,
        details={"reason": reason[:2000]} if reason else None,
    )
    if rolled_back:
        locked.roll_back()
        save_versioned(locked, ["state"])
        audit_record(action="change.rolled_back", obj=locked)
    _open_retroactive_reviews(locked, now=now)
    notify_stakeholders(
        locked,
        subject=f"{locked.public_id} failed ({locked.get_state_display().lower()})",
        key="failed",
    )
    return locked


def _open_retroactive_reviews(change: ChangeRequest, *, now: datetime) -> None:
    """An urgent change's retroactive review is due 72 h (the rule's hours) after it ran."""
    retroactive = list(change.approvals.filter(phase=Approval.Phase.RETROACTIVE))
    for approval in retroactive:
        if approval.status != Approval.Status.PENDING:
            continue
        hours = approval.rule.due_hours if approval.rule and approval.rule.due_hours else None
        approval.due_at = now + timedelta(hours=hours or RETROACTIVE_DUE_HOURS)
        approval.save(update_fields=["due_at"])
    for approval in retroactive:
        notify(
            recipients=access.users_who_can_see(change, role=approval.role),
            subject=f"Retroactive review due: {change.public_id}",
            url=approval.get_absolute_url(),
            dedup_key=f"approval:{approval.pk}:retro",
        )
