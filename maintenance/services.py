"""Writes of the maintenance app: windows, scheduling, execution, runs and reviews.

Each service checks permission, locks the rows it changes, moves state, saves, writes
its audit row in the same transaction and enqueues work through the outbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dateutil.rrule import rrulestr
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_fsm import can_proceed

from changes.errors import Conflict, Invalid, NotAllowed, SeparationOfDuties
from changes.models import Approval, ChangeRequest, PostImplementationReview, State
from changes.services import (
    audits_refusals,
    change_save_versioned,
    notify_approvers,
    refuse,
)
from maintenance import scheduling
from maintenance.blackout import blackout_reason
from maintenance.models import (
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceIssue,
    MaintenancePolicy,
    MaintenanceWindow,
    ProcedureRun,
    ScheduledChange,
    StepRun,
    WindowApproval,
    WindowNotice,
    WindowType,
)
from maintenance.procedures import UnknownProcedure, registry
from portal.audit import audit_record
from portal.models import AuditEvent
from portal.notifications import notify
from portal.outbox import outbox_enqueue
from portal.roles import Role, has_role

OPERATOR_ROLES = (Role.OPERATIONS,)


def _is_operator(user) -> bool:
    return user is not None and (user.is_superuser or has_role(user, *OPERATOR_ROLES))


# --- windows ----------------------------------------------------------------------------


def windows_generate(*, now: datetime | None = None) -> list[MaintenanceWindow]:
    """Open the routine windows of the next weeks (seed: SUNDAY 01:00-05:00 UTC),
    skipping blackout days. Idempotent: an existing window is never created twice."""
    now = now or timezone.now()
    policy = MaintenancePolicy.objects.get(type=WindowType.ROUTINE)
    until = now + timedelta(weeks=policy.generate_weeks)
    rule = rrulestr(policy.rrule, dtstart=now.replace(minute=0, second=0, microsecond=0))
    created = []
    for start in rule.between(now, until, inc=False):
        if blackout_reason(start.date(), policy):
            continue
        with transaction.atomic():
            window, made = MaintenanceWindow.objects.get_or_create(
                type=WindowType.ROUTINE,
                start=start,
                defaults={
                    "duration_minutes": policy.default_duration_minutes,
                    "timezone": policy.timezone,
                    "notification_offsets": list(policy.notification_offsets),
                    "title": f"Routine window {start:%a %d %b %Y}",
                },
            )
            if made:
                audit_record(
                    action="window.generated", obj=window, details={"start": start.isoformat()}
                )
                created.append(window)
    return created


def emergency_window_request(
    *, by, start: datetime, duration_minutes: int, reason: str, now: datetime | None = None
) -> MaintenanceWindow:
    now = now or timezone.now()
    policy = MaintenancePolicy.objects.get(type=WindowType.EMERGENCY)
    if not (
        by.is_superuser
        or has_role(by, Role.OPERATIONS, Role.ENGINEERING, Role.SECURITY, Role.REQUESTER)
    ):
        raise NotAllowed("Your roles do not allow requesting emergency windows.")
    if start < now + timedelta(minutes=policy.min_notice_minutes):
        raise Invalid(
            f"An emergency window starts at least {policy.min_notice_minutes} minutes "
            "ahead, so stakeholders can be notified."
        )
    if not 1 <= duration_minutes <= policy.max_duration_minutes:
        raise Invalid(f"An emergency window lasts 1 to {policy.max_duration_minutes} minutes.")
    if not reason.strip():
        raise Invalid("Say why the emergency window is needed.")
    with transaction.atomic(durable=True):
        window = MaintenanceWindow.objects.create(
            type=WindowType.EMERGENCY,
            start=start,
            duration_minutes=duration_minutes,
            timezone=policy.timezone,
            notification_offsets=list(policy.notification_offsets),
            status=MaintenanceWindow.Status.PENDING_APPROVAL,
            title=f"Emergency window {start:%Y-%m-%d %H:%M} UTC",
            reason=reason.strip()[:5000],
            requested_by=by,
        )
        for role in policy.approver_roles:
            WindowApproval.objects.create(window=window, role=role)
        audit_record(
            action="window.requested",
            user=by,
            obj=window,
            details={"start": start.isoformat(), "minutes": duration_minutes},
        )
        User = get_user_model()
        notify(
            recipients=User.objects.filter(
                groups__name__in=policy.approver_roles, is_active=True
            ).exclude(pk=by.pk),
            subject=f"Emergency window needs approval: {window.title}",
            body=window.reason,
            url=window.get_absolute_url(),
            dedup_key=f"window:{window.pk}:approval",
        )
    return window


def window_decide(
    *, approval: WindowApproval, by, decision: str, comment: str = "", now: datetime | None = None
) -> WindowApproval:
    """CTO and HEAD_OF_SECURITY approve an emergency window, with the changes' rules."""
    now = now or timezone.now()
    if decision not in ("APPROVED", "REJECTED"):
        raise Invalid("Choose Approve or Reject.")
    if decision == "REJECTED" and not comment.strip():
        raise Invalid("A rejection needs a comment explaining why.")
    with transaction.atomic(durable=True):
        window = MaintenanceWindow.objects.select_for_update().get(pk=approval.window_id)
        locked = WindowApproval.objects.select_for_update().get(pk=approval.pk)
        if window.requested_by_id == by.pk:
            raise SeparationOfDuties("You requested this window, so you cannot approve it.")
        if (
            WindowApproval.objects.filter(window=window, decided_by=by)
            .exclude(pk=locked.pk)
            .exists()
        ):
            raise SeparationOfDuties("One person may fill only one role per window.")
        if not (by.is_superuser or has_role(by, locked.role)):
            raise NotAllowed(f"Only {locked.get_role_display()} decides this approval.")
        if locked.status != WindowApproval.Status.PENDING:
            raise Conflict("This approval is already decided.")
        if window.status != MaintenanceWindow.Status.PENDING_APPROVAL:
            raise Conflict(f"The window is {window.get_status_display().lower()}.")
        locked.status, locked.comments = decision, comment.strip()
        locked.decided_by, locked.decided_at = by, now
        locked.save(update_fields=["status", "comments", "decided_by", "decided_at"])
        audit_record(
            action=f"window.{decision.lower()}",
            user=by,
            role=locked.role,
            obj=window,
            details={"comment": comment[:2000]},
        )
        statuses = set(window.approvals.values_list("status", flat=True))
        if "REJECTED" in statuses:
            window.status = MaintenanceWindow.Status.REJECTED
        elif statuses == {"APPROVED"}:
            window.status = MaintenanceWindow.Status.PLANNED
        window.save(update_fields=["status"])
        if window.status != MaintenanceWindow.Status.PENDING_APPROVAL and window.requested_by:
            notify(
                recipients=[window.requested_by],
                subject=f"{window.title}: {window.get_status_display().lower()}",
                body=comment.strip() or "",
                url=window.get_absolute_url(),
                dedup_key=f"window:{window.pk}:decided",
            )
    return locked


# --- procedures on a change ---------------------------------------------------------------


def change_procedure_add(
    *, change: ChangeRequest, by, kind: str, params: dict[str, Any]
) -> ChangeProcedure:
    """Add a procedure. After approval this sends the change back to review."""
    try:
        procedure = registry.get(kind)
    except UnknownProcedure:
        raise Invalid(f"Unknown procedure kind {kind!r}.") from None
    try:
        clean = procedure.clean_params(params)
    except ValidationError as exc:
        raise Invalid("; ".join(exc.messages)) from None
    with transaction.atomic(durable=True):
        locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
        _check_procedure_edit(locked, by)
        position = (locked.procedures.count() or 0) + 1
        item = ChangeProcedure.objects.create(
            change=locked, position=position, kind=kind, params=clean, added_by=by
        )
        audit_record(
            action="change.procedure_added",
            user=by,
            obj=locked,
            details={"kind": kind, "summary": procedure.summary(clean)},
        )
        _reopen_if_approved(locked, by, reason=f"procedure {procedure.label} added")
    return item


def change_procedure_remove(*, item: ChangeProcedure, by) -> None:
    with transaction.atomic(durable=True):
        locked = ChangeRequest.objects.select_for_update().get(pk=item.change_id)
        _check_procedure_edit(locked, by)
        if item.runs.exists():
            raise Conflict("This procedure has run; it stays on record.")
        item.delete()
        audit_record(
            action="change.procedure_removed", user=by, obj=locked, details={"kind": item.kind}
        )
        _reopen_if_approved(locked, by, reason=f"procedure {item.kind} removed")


def _check_procedure_edit(change: ChangeRequest, by) -> None:
    if change.requester_id != by.pk and not _is_operator(by):
        raise NotAllowed("Only the requester or an operator may change the procedures.")
    if change.state not in (
        State.DRAFT,
        State.SUBMITTED,
        State.IN_REVIEW,
        State.APPROVED,
        State.SCHEDULED,
    ):
        raise Conflict(
            f"{change.public_id} is {change.get_state_display()}; its procedures "
            "can no longer change."
        )


def _reopen_if_approved(change: ChangeRequest, by, *, reason: str) -> None:
    """Changing what runs after approval invalidates the approvals: back to review."""
    if change.state not in (State.APPROVED, State.SCHEDULED):
        return
    ScheduledChange.objects.filter(change=change).delete()
    approvals = change.approvals.filter(phase=Approval.Phase.PRE)
    approvals.update(
        status=Approval.Status.PENDING,
        decided_by=None,
        decided_at=None,
        comments="",
        version=F("version") + 1,
    )
    change.reopen_review()
    change_save_versioned(change, ["state"])
    audit_record(action="change.review_reopened", user=by, obj=change, details={"reason": reason})
    notify_approvers(change, list(approvals))


# --- scheduling ------------------------------------------------------------------------


@audits_refusals
def change_schedule(
    *, change: ChangeRequest, window: MaintenanceWindow, by, now: datetime | None = None
) -> ScheduledChange:
    now = now or timezone.now()
    if not _is_operator(by):
        raise NotAllowed("Only operators schedule changes.")
    with transaction.atomic(durable=True):
        locked_window = MaintenanceWindow.objects.select_for_update().get(pk=window.pk)
        locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
        if locked.state != State.APPROVED:
            raise Conflict(
                f"{locked.public_id} is {locked.get_state_display()}; only approved "
                "changes can be scheduled."
            )
        reasons = scheduling.refusals(locked, locked_window, now=now)
        if reasons:
            refuse(
                user=by,
                action="change.schedule_refused",
                change=locked,
                reason=" ".join(reasons),
                exc=Invalid,
                details={"window": locked_window.pk},
            )
        slot = scheduling.proposed_slot(locked, locked_window)
        scheduled = ScheduledChange.objects.create(
            window=locked_window,
            change=locked,
            position=slot.position,
            planned_start=slot.planned_start,
            planned_minutes=slot.planned_minutes,
            scheduled_by=by,
        )
        locked.schedule()
        change_save_versioned(locked, ["state"])
        audit_record(
            action="change.scheduled",
            user=by,
            role=Role.OPERATIONS,
            obj=locked,
            details={"window": locked_window.pk, "planned_start": slot.planned_start.isoformat()},
        )
        _notify_change_stakeholders(
            locked,
            subject=f"{locked.public_id} scheduled for {slot.planned_start:%Y-%m-%d %H:%M} UTC",
            key=f"scheduled:{scheduled.pk}",
        )
    return scheduled


def change_unschedule(*, change: ChangeRequest, by, reason: str = "") -> ChangeRequest:
    if not _is_operator(by):
        raise NotAllowed("Only operators unschedule changes.")
    with transaction.atomic(durable=True):
        locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
        if locked.state != State.SCHEDULED:
            raise Conflict(f"{locked.public_id} is not scheduled.")
        slot = ScheduledChange.objects.select_for_update().get(change=locked)
        window_id = slot.window_id
        slot.delete()
        locked.unschedule()
        change_save_versioned(locked, ["state"])
        audit_record(
            action="change.unscheduled",
            user=by,
            role=Role.OPERATIONS,
            obj=locked,
            details={"window": window_id, "reason": reason[:2000]},
        )
        _notify_change_stakeholders(
            locked,
            subject=f"{locked.public_id} was unscheduled",
            key=f"unscheduled:{window_id}:{timezone.now().timestamp()}",
        )
    return locked


def change_reschedule(*, change: ChangeRequest, window: MaintenanceWindow, by) -> ScheduledChange:
    change_unschedule(change=change, by=by, reason=f"moved to window {window.pk}")
    return change_schedule(change=ChangeRequest.objects.get(pk=change.pk), window=window, by=by)


def _change_stakeholders(change: ChangeRequest) -> list:
    User = get_user_model()
    ids = {change.requester_id}
    ids.update(change.approvals.exclude(decided_by=None).values_list("decided_by", flat=True))
    return list(User.objects.filter(pk__in=ids, is_active=True))


def _notify_change_stakeholders(
    change: ChangeRequest, *, subject: str, key: str, body: str = ""
) -> None:
    notify(
        recipients=_change_stakeholders(change),
        subject=subject,
        body=body or change.title,
        url=change.get_absolute_url(),
        dedup_key=f"change:{change.pk}:{key}",
    )


# --- stakeholders and pre-start notices -----------------------------------------------


def window_stakeholders(window: MaintenanceWindow) -> tuple[list, list[str]]:
    """Users (requesters, approvers, operators of its changes, subscribers) and the
    tenants' contact addresses."""
    User = get_user_model()
    change_ids = list(window.scheduled_changes.values_list("change_id", flat=True))
    ids = set(window.subscribers.values_list("pk", flat=True))
    ids.update(
        ChangeRequest.objects.filter(pk__in=change_ids).values_list("requester_id", flat=True)
    )
    ids.update(
        Approval.objects.filter(change_id__in=change_ids)
        .exclude(decided_by=None)
        .values_list("decided_by", flat=True)
    )
    ids.update(ScheduledChange.objects.filter(window=window).values_list("scheduled_by", flat=True))
    if window.requested_by_id:
        ids.add(window.requested_by_id)
    execution = MaintenanceExecution.objects.filter(window=window).first()
    if execution and execution.started_by_id:
        ids.add(execution.started_by_id)
    users = list(User.objects.filter(pk__in=ids, is_active=True).order_by("pk"))
    from portal.models import Tenant

    contacts = sorted(
        set(
            Tenant.objects.filter(changes__in=change_ids)
            .exclude(contact_email="")
            .values_list("contact_email", flat=True)
        )
    )
    return users, contacts


def _notice_body(window: MaintenanceWindow, *, user=None, contact: str | None = None) -> str:
    """The changes this recipient may know about: a user sees the changes they may
    view, a tenant contact those of their tenant; others are only counted."""
    from changes import access

    slots = list(window.scheduled_changes.select_related("change"))
    if user is not None:
        visible = set(
            access.changes_visible_to(user)
            .filter(pk__in=[s.change_id for s in slots])
            .values_list("pk", flat=True)
        )
    else:
        visible = set(
            ChangeRequest.objects.filter(
                pk__in=[s.change_id for s in slots], tenants__contact_email=contact
            ).values_list("pk", flat=True)
        )
    named = [f"{s.change.public_id} {s.change.title}" for s in slots if s.change_id in visible]
    hidden = len(slots) - len(named)
    lines = named or ["no changes of yours are scheduled in it"]
    if hidden:
        lines.append(f"and {hidden} other change(s)")
    return "Changes: " + "; ".join(lines)


def window_notices_send(*, now: datetime | None = None) -> int:
    """Send each due pre-start notice exactly once per (window, offset, recipient), even
    when the tick runs twice or late (a late tick still sends before the start)."""
    now = now or timezone.now()
    largest = max(
        [int(o) for p in MaintenancePolicy.objects.all() for o in p.notification_offsets or []]
        + [1440]
    )
    horizon = now + timedelta(minutes=largest)
    sent = 0
    windows = MaintenanceWindow.objects.filter(
        status=MaintenanceWindow.Status.PLANNED, start__gt=now
    ).filter(start__lte=horizon)
    for window in windows:
        users, contacts = window_stakeholders(window)
        for offset in sorted(window.notification_offsets or [], reverse=True):
            if now < window.start - timedelta(minutes=int(offset)):
                continue
            subject = (
                f"Maintenance window starts {window.start:%Y-%m-%d %H:%M} UTC "
                f"({window.get_type_display()}, {window.duration_minutes} min)"
            )
            for key, user, email in [(f"user:{u.pk}", u, None) for u in users] + [
                (f"email:{c}", None, c) for c in contacts
            ]:
                try:
                    with transaction.atomic():
                        WindowNotice.objects.create(
                            window=window, offset_minutes=int(offset), recipient=key
                        )
                        body = _notice_body(window, user=user, contact=email)
                        if user is not None:
                            notify(
                                recipients=[user],
                                subject=subject,
                                body=body,
                                url=window.get_absolute_url(),
                                dedup_key=f"window:{window.pk}:notice:{offset}",
                            )
                        else:
                            # Through the outbox: a mail server that is down delays the
                            # notice instead of losing it.
                            outbox_enqueue(
                                task_name="portal.send_email",
                                args=[[email], f"[Change Portal] {subject}", body],
                            )
                except IntegrityError:
                    continue
                sent += 1
    return sent


# --- execution ---------------------------------------------------------------------------


def _approved_by(user, window: MaintenanceWindow) -> bool:
    change_ids = window.scheduled_changes.values("change_id")
    return Approval.objects.filter(change_id__in=change_ids, decided_by=user).exists()


@audits_refusals
def window_start(
    *, window: MaintenanceWindow, by=None, now: datetime | None = None
) -> MaintenanceExecution:
    """Start a window's execution: by an operator, or by beat (by=None) at its start."""
    now = now or timezone.now()
    if by is not None and not _is_operator(by):
        raise NotAllowed("Only operators start maintenance windows.")
    with transaction.atomic(durable=True):
        locked = MaintenanceWindow.objects.select_for_update().get(pk=window.pk)
        if locked.status != MaintenanceWindow.Status.PLANNED:
            raise Conflict(f"The window is {locked.get_status_display().lower()}.")
        if not locked.is_open(now):
            raise Conflict(
                f"The window is open {locked.start:%Y-%m-%d %H:%M}–{locked.end:%H:%M} UTC; "
                "it can only be started while open."
            )
        if by is not None and _approved_by(by, locked):
            first = ChangeRequest.objects.filter(slot__window=locked).first()
            refuse(
                user=by,
                action="window.start_refused",
                change=first,
                reason="You approved a change in this window; someone who was not an "
                "approver must start it.",
                exc=SeparationOfDuties,
                details={"window": locked.pk},
            )
        execution, _ = MaintenanceExecution.objects.get_or_create(
            window=locked, defaults={"planned_at": locked.start}
        )
        execution.status = MaintenanceExecution.Status.IN_PROGRESS
        execution.started_at = now
        execution.started_by = by
        execution.save(update_fields=["status", "started_at", "started_by"])
        locked.status = MaintenanceWindow.Status.IN_PROGRESS
        locked.save(update_fields=["status"])
        audit_record(
            action="window.started",
            user=by,
            role=Role.OPERATIONS if by else "",
            obj=locked,
            details={"execution": execution.pk},
        )
        outbox_enqueue(task_name="maintenance.advance_execution", args=[execution.pk])
    return execution


def _issue(
    execution: MaintenanceExecution,
    kind: str,
    message: str,
    change: ChangeRequest | None = None,
    *,
    notify_stakeholders: bool = True,
) -> None:
    MaintenanceIssue.objects.create(execution=execution, kind=kind, message=message, change=change)
    audit_record(
        action="execution.issue",
        obj=execution.window,
        outcome=AuditEvent.Outcome.FAILURE,
        details={
            "kind": kind,
            "message": message[:2000],
            "change": change.public_id if change else None,
        },
    )
    if notify_stakeholders:
        users, _ = window_stakeholders(execution.window)
        notify(
            recipients=users,
            subject=f"Maintenance issue ({kind}): {message[:120]}",
            body=message,
            url=execution.window.get_absolute_url(),
        )


def _refresh_counts(execution: MaintenanceExecution) -> None:
    runs = ProcedureRun.objects.filter(execution=execution)
    latest = {}
    for run in runs.order_by("procedure_id", "attempt"):
        latest[run.procedure_id] = run.status
    statuses = list(latest.values())
    execution.procedures_total = len(statuses)
    execution.procedures_completed = statuses.count(ProcedureRun.Status.SUCCEEDED)
    execution.procedures_failed = sum(
        statuses.count(s)
        for s in (
            ProcedureRun.Status.FAILED,
            ProcedureRun.Status.ROLLED_BACK,
            ProcedureRun.Status.INTERRUPTED,
        )
    )
    execution.save(update_fields=["procedures_total", "procedures_completed", "procedures_failed"])


def execution_advance(*, execution_id: int, now: datetime | None = None) -> str:
    """Move a window's execution on by what can be done now; safe to call any time and
    twice. Changes run in order; a change's procedures run one at a time."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        execution = (
            MaintenanceExecution.objects.select_for_update()
            .select_related("window")
            .get(pk=execution_id)
        )
        if execution.status != MaintenanceExecution.Status.IN_PROGRESS:
            return "not running"
        window = execution.window
        result = "finished"
        for slot in window.scheduled_changes.select_related("change").order_by("position"):
            change = ChangeRequest.objects.select_for_update().get(pk=slot.change_id)
            outcome = _advance_change(execution, window, change, now=now)
            if outcome != "done":
                result = outcome
                break
        _refresh_counts(execution)
        if result == "finished":
            _finish_execution(execution, now=now)
        return result


def _advance_change(execution, window, change: ChangeRequest, *, now) -> str:
    if change.state in (
        State.COMPLETED,
        State.FAILED,
        State.ROLLED_BACK,
        State.CLOSED,
        State.CANCELLED,
        State.REJECTED,
        State.IN_REVIEW,
        State.APPROVED,
    ):
        return "done"
    if change.state == State.SCHEDULED:
        if now >= window.end:
            if not MaintenanceIssue.objects.filter(
                execution=execution, change=change, kind=MaintenanceIssue.Kind.OVERRUN
            ).exists():
                _issue(
                    execution,
                    MaintenanceIssue.Kind.OVERRUN,
                    f"{change.public_id} was not started: the window ended at "
                    f"{window.end:%H:%M} UTC.",
                    change,
                )
            return "done"
        change.start()
        change_save_versioned(change, ["state"])
        audit_record(
            action="change.started",
            user=execution.started_by,
            obj=change,
            details={"window": window.pk},
        )
        for item in change.procedures.order_by("position"):
            ProcedureRun.objects.get_or_create(
                idempotency_key=f"ex{execution.pk}-p{item.pk}-a1",
                defaults={"procedure": item, "change": change, "execution": execution},
            )
    if change.state == State.VERIFYING:
        return "waiting"  # a change implemented by hand waits for its verification
    # in progress
    items = list(change.procedures.order_by("position"))
    if not items:
        return "waiting"  # implemented by hand: an operator marks it implemented
    latest: dict[int, ProcedureRun] = {}
    for run in ProcedureRun.objects.filter(execution=execution, change=change).order_by("attempt"):
        latest[run.procedure_id] = run
    failed = False
    for item in items:
        run = latest.get(item.pk)
        if run is None or run.status == ProcedureRun.Status.SUCCEEDED:
            continue
        if run.status in (
            ProcedureRun.Status.QUEUED,
            ProcedureRun.Status.RUNNING,
            ProcedureRun.Status.WAITING,
            ProcedureRun.Status.INTERRUPTED,
        ):
            return "waiting"
        if run.status in (
            ProcedureRun.Status.FAILED,
            ProcedureRun.Status.ROLLED_BACK,
            ProcedureRun.Status.SKIPPED,
        ):
            failed = True
            break
        # PENDING: start it, unless it would start or run past the window's end.
        minutes = registry.get(item.kind).max_minutes(item.params)
        if now >= window.end or now + timedelta(minutes=minutes) > window.end:
            run.status = ProcedureRun.Status.SKIPPED
            run.finished_at = now
            run.error = (
                f"Not started: the window ends at {window.end:%H:%M} UTC and this "
                f"procedure may take {minutes} min."
            )
            run.save(update_fields=["status", "finished_at", "error"])
            _issue(
                execution,
                MaintenanceIssue.Kind.OVERRUN,
                f"{change.public_id}: {item.procedure.label} #{item.position} not started, "
                f"the window ends at {window.end:%H:%M} UTC (cutoff).",
                change,
            )
            failed = True
            break
        run.status = ProcedureRun.Status.QUEUED
        run.queued_at = now
        run.save(update_fields=["status", "queued_at"])
        outbox_enqueue(task_name="maintenance.execute_run", args=[run.pk])
        return "waiting"
    if failed:
        _fail_change(execution, change, latest, now=now)
        return "done"
    change.implemented()
    change_save_versioned(change, ["state"])
    audit_record(action="change.implemented", obj=change, details={"procedures": len(items)})
    _complete_change(change, now=now)
    return "done"


def _complete_change(change: ChangeRequest, *, now) -> None:
    change.complete()
    change.outcome = "SUCCESSFUL"
    change.executed_at = now
    change_save_versioned(change, ["state", "outcome", "executed_at"])
    audit_record(action="change.completed", obj=change)
    _open_retroactive_reviews(change, now=now)
    _notify_change_stakeholders(change, subject=f"{change.public_id} completed", key="completed")


def _fail_change(execution, change: ChangeRequest, latest: dict, *, now) -> None:
    for run in latest.values():
        if run.status == ProcedureRun.Status.PENDING:
            run.status = ProcedureRun.Status.SKIPPED
            run.finished_at = now
            run.error = "Not started: an earlier procedure of this change failed."
            run.save(update_fields=["status", "finished_at", "error"])
    change.fail()
    change.outcome = "FAILED"
    change.executed_at = now
    change_save_versioned(change, ["state", "outcome", "executed_at"])
    audit_record(action="change.failed", obj=change, outcome=AuditEvent.Outcome.FAILURE)
    statuses = {r.status for r in latest.values()}
    if ProcedureRun.Status.ROLLED_BACK in statuses and ProcedureRun.Status.FAILED not in statuses:
        change.roll_back()
        change_save_versioned(change, ["state"])
        audit_record(action="change.rolled_back", obj=change)
    _open_retroactive_reviews(change, now=now)
    _notify_change_stakeholders(
        change,
        subject=f"{change.public_id} failed ({change.get_state_display().lower()})",
        key="failed",
    )


def _open_retroactive_reviews(change: ChangeRequest, *, now) -> None:
    """An urgent change's retroactive review is due 72 h after execution."""
    for approval in change.approvals.filter(
        phase=Approval.Phase.RETROACTIVE, status=Approval.Status.PENDING
    ):
        hours = approval.rule.due_hours if approval.rule and approval.rule.due_hours else 72
        approval.due_at = now + timedelta(hours=hours)
        approval.save(update_fields=["due_at"])
    from changes import access

    for approval in change.approvals.filter(phase=Approval.Phase.RETROACTIVE):
        notify(
            recipients=access.users_who_can_see(change, role=approval.role),
            subject=f"Retroactive review due: {change.public_id}",
            url=approval.get_absolute_url(),
            dedup_key=f"approval:{approval.pk}:retro",
        )


def _finish_execution(execution: MaintenanceExecution, *, now) -> None:
    window = execution.window
    states = list(ChangeRequest.objects.filter(slot__window=window).values_list("state", flat=True))
    ok = (
        all(s in (State.COMPLETED, State.CLOSED) for s in states)
        and not (execution.procedures_failed)
        and not execution.issues.filter(kind=MaintenanceIssue.Kind.OVERRUN).exists()
    )
    execution.status = (
        MaintenanceExecution.Status.COMPLETED if ok else MaintenanceExecution.Status.FAILED
    )
    execution.completed_at = now
    execution.save(update_fields=["status", "completed_at"])
    window.status = MaintenanceWindow.Status.COMPLETED if ok else MaintenanceWindow.Status.FAILED
    window.save(update_fields=["status"])
    audit_record(
        action=f"window.{window.status.lower()}",
        obj=window,
        details={
            "total": execution.procedures_total,
            "completed": execution.procedures_completed,
            "failed": execution.procedures_failed,
        },
    )
    outbox_enqueue(task_name="maintenance.generate_report", args=[execution.pk])
    users, _ = window_stakeholders(window)
    notify(
        recipients=users,
        subject=f"{window.label} {execution.get_status_display().lower()}",
        body=(
            f"{execution.procedures_completed} of {execution.procedures_total} procedures "
            f"completed, {execution.procedures_failed} failed."
        ),
        url=window.get_absolute_url(),
        dedup_key=f"window:{window.pk}:finished",
    )


def start_due_windows(*, now: datetime | None = None) -> int:
    """Beat: start every planned window that is open now and has changes in it."""
    now = now or timezone.now()
    started = 0
    due = MaintenanceWindow.objects.filter(
        status=MaintenanceWindow.Status.PLANNED,
        start__lte=now,
        start__gte=now - timedelta(days=1),
        scheduled_changes__isnull=False,
    ).distinct()
    for window in due:
        if window.is_open(now):
            try:
                window_start(window=window, by=None, now=now)
                started += 1
            except Conflict:
                continue
    return started


# --- operators finishing changes by hand ---------------------------------------------


def _check_executor(by, change: ChangeRequest) -> None:
    if not _is_operator(by):
        raise NotAllowed("Only operators carry out changes.")
    if change.approvals.filter(decided_by=by, phase=Approval.Phase.PRE).exists():
        raise SeparationOfDuties("You approved this change; someone else must carry it out.")


def change_mark_implemented(*, change: ChangeRequest, by, notes: str = "") -> ChangeRequest:
    with transaction.atomic(durable=True):
        locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
        _check_executor(by, locked)
        if locked.state != State.IN_PROGRESS or locked.procedures.exists():
            raise Conflict("Only a change in progress without procedures is implemented by hand.")
        locked.implemented()
        change_save_versioned(locked, ["state"])
        audit_record(
            action="change.implemented",
            user=by,
            role=Role.OPERATIONS,
            obj=locked,
            details={"notes": notes[:2000]},
        )
    return locked


def change_verify(*, change: ChangeRequest, by, passed: bool, notes: str) -> ChangeRequest:
    if not notes.strip():
        raise Invalid("Describe what you checked.")
    with transaction.atomic(durable=True):
        locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
        _check_executor(by, locked)
        if locked.state != State.VERIFYING:
            raise Conflict(f"{locked.public_id} is not being verified.")
        now = timezone.now()
        audit_record(
            action="change.verified" if passed else "change.verification_failed",
            user=by,
            role=Role.OPERATIONS,
            obj=locked,
            details={"notes": notes[:4000]},
            outcome=AuditEvent.Outcome.SUCCESS if passed else AuditEvent.Outcome.FAILURE,
        )
        if passed:
            _complete_change(locked, now=now)
        else:
            _fail_change(_execution_of(locked), locked, {}, now=now)
        execution = _execution_of(locked)
        if execution is not None:
            outbox_enqueue(task_name="maintenance.advance_execution", args=[execution.pk])
    return locked


def _execution_of(change: ChangeRequest) -> MaintenanceExecution | None:
    return MaintenanceExecution.objects.filter(window__scheduled_changes__change=change).first()


# --- runs ------------------------------------------------------------------------------------


def run_claim(*, run_id: int, worker: str, now: datetime | None = None) -> ProcedureRun | None:
    """Take a queued run for this worker; None when another delivery already did (a
    duplicate message), so the same run never executes twice."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        claimed = ProcedureRun.objects.filter(pk=run_id, status=ProcedureRun.Status.QUEUED).update(
            status=ProcedureRun.Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            worker=worker[:255],
        )
        if not claimed:
            return None
        run = ProcedureRun.objects.select_related("procedure", "change", "execution__window").get(
            pk=run_id
        )
        window = run.execution.window
        slot_ok = ScheduledChange.objects.filter(change=run.change, window=window).exists()
        refusal = None
        if run.change.state != State.IN_PROGRESS or not slot_ok:
            refusal = f"{run.change.public_id} is not an approved change in progress here."
        elif not window.is_open(now):
            refusal = f"The window is not open now (it ends at {window.end:%H:%M} UTC)."
        if refusal:
            run.status = ProcedureRun.Status.SKIPPED
            run.finished_at = now
            run.error = f"Not started: {refusal}"
            run.save(update_fields=["status", "finished_at", "error"])
            _issue(run.execution, MaintenanceIssue.Kind.OVERRUN, run.error, run.change)
            outbox_enqueue(task_name="maintenance.advance_execution", args=[run.execution_id])
            return None
        audit_record(
            action="run.started",
            obj=run.change,
            details={"run": run.pk, "kind": run.procedure.kind, "worker": worker},
        )
    return run


def run_finish(
    *, run: ProcedureRun, status: str, error: str = "", result: dict | None = None
) -> None:
    with transaction.atomic(durable=True):
        locked = ProcedureRun.objects.select_for_update().get(pk=run.pk)
        if locked.status not in (ProcedureRun.Status.RUNNING, ProcedureRun.Status.WAITING):
            return  # the reaper or an operator got there first
        locked.status = status
        locked.error = error[:10_000]
        locked.finished_at = timezone.now()
        locked.progress = 100
        if result:
            locked.result = {**locked.result, **result}
        locked.save(update_fields=["status", "error", "finished_at", "progress", "result"])
        audit_record(
            action=f"run.{status.lower()}",
            obj=locked.change,
            outcome=AuditEvent.Outcome.SUCCESS
            if status == ProcedureRun.Status.SUCCEEDED
            else AuditEvent.Outcome.FAILURE,
            details={"run": locked.pk, "kind": locked.procedure.kind, "error": error[:500]},
        )
        if status != ProcedureRun.Status.SUCCEEDED:
            _issue(
                locked.execution,
                MaintenanceIssue.Kind.PROCEDURE_FAILED,
                f"{locked.change.public_id}: {locked.procedure.procedure.label} "
                f"#{locked.procedure.position} {locked.get_status_display().lower()}: "
                f"{error[:300]}",
                locked.change,
            )
        outbox_enqueue(task_name="maintenance.advance_execution", args=[locked.execution_id])


def run_wait_for_operator(*, run: ProcedureRun, steps: list[str]) -> None:
    with transaction.atomic(durable=True):
        for n, name in enumerate(steps, start=1):
            StepRun.objects.get_or_create(
                run=run, position=n, defaults={"kind": StepRun.Kind.STEP, "name": name}
            )
        ProcedureRun.objects.filter(pk=run.pk, status=ProcedureRun.Status.RUNNING).update(
            status=ProcedureRun.Status.WAITING
        )
        audit_record(action="run.waiting", obj=run.change, details={"run": run.pk})
        users, _ = window_stakeholders(run.execution.window)
        notify(
            recipients=[u for u in users if has_role(u, Role.OPERATIONS)],
            subject=f"Checklist waiting: {run.change.public_id}",
            url=run.change.get_absolute_url(),
            dedup_key=f"run:{run.pk}:waiting",
        )


def step_complete(*, step: StepRun, by, evidence: str, passed: bool = True) -> StepRun:
    """An operator ticks a checklist step; evidence is required."""
    if not evidence.strip():
        raise Invalid("Enter an evidence note for this step.")
    with transaction.atomic(durable=True):
        run = ProcedureRun.objects.select_for_update().select_related("change").get(pk=step.run_id)
        locked = StepRun.objects.select_for_update().get(pk=step.pk)
        _check_executor(by, run.change)
        if run.status != ProcedureRun.Status.WAITING:
            raise Conflict("This checklist is not waiting for an operator.")
        if locked.status != StepRun.Status.PENDING:
            raise Conflict("This step is already done.")
        earlier = run.steps.filter(position__lt=locked.position, status=StepRun.Status.PENDING)
        if earlier.exists():
            raise Conflict("Tick the steps in order.")
        now = timezone.now()
        locked.status = StepRun.Status.SUCCEEDED if passed else StepRun.Status.FAILED
        locked.evidence = evidence.strip()[:10_000]
        locked.completed_by = by
        locked.started_at = locked.started_at or now
        locked.finished_at = now
        locked.save(
            update_fields=["status", "evidence", "completed_by", "started_at", "finished_at"]
        )
        audit_record(
            action="run.step_done" if passed else "run.step_failed",
            user=by,
            role=Role.OPERATIONS,
            obj=run.change,
            details={"run": run.pk, "step": locked.name, "evidence": evidence[:2000]},
        )
        total = run.steps.count()
        done = run.steps.filter(status=StepRun.Status.SUCCEEDED).count()
        run.heartbeat_at = now
        run.progress = int(100 * done / total) if total else 100
        run.save(update_fields=["heartbeat_at", "progress"])
    if not passed:
        run_finish(
            run=run,
            status=ProcedureRun.Status.FAILED,
            error=f"Step {locked.name!r} failed: {evidence.strip()[:500]}",
        )
    elif done == total:
        missing = StepRun.objects.filter(run=run, evidence="").exists()
        run_finish(
            run=run,
            status=ProcedureRun.Status.FAILED if missing else ProcedureRun.Status.SUCCEEDED,
            result={"verified": "every step ticked with evidence"},
        )
    return locked


def runs_reap_stale(*, now: datetime | None = None) -> int:
    """Mark runs whose worker stopped beating INTERRUPTED; nothing re-runs on its own."""
    from django.conf import settings

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.RUN_STALE_SECONDS)
    stale = list(
        ProcedureRun.objects.filter(
            status=ProcedureRun.Status.RUNNING, heartbeat_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    reaped = 0
    for run_id in stale:
        with transaction.atomic(durable=True):
            run = (
                ProcedureRun.objects.select_for_update(skip_locked=True)
                .filter(pk=run_id, status=ProcedureRun.Status.RUNNING, heartbeat_at__lt=cutoff)
                .select_related("change", "execution__window", "procedure")
                .first()
            )
            if run is None:
                continue
            run.status = ProcedureRun.Status.INTERRUPTED
            run.finished_at = now
            run.error = (
                f"The worker {run.worker or '(unknown)'} stopped reporting at "
                f"{run.heartbeat_at:%H:%M:%S} UTC. It will not be re-run unless an "
                "operator decides to."
            )
            run.save(update_fields=["status", "finished_at", "error"])
            run.steps.filter(status=StepRun.Status.RUNNING).update(
                status=StepRun.Status.FAILED, finished_at=now
            )
            audit_record(
                action="run.interrupted",
                obj=run.change,
                outcome=AuditEvent.Outcome.FAILURE,
                details={"run": run.pk, "worker": run.worker},
            )
            _issue(
                run.execution,
                MaintenanceIssue.Kind.INTERRUPTED,
                f"{run.change.public_id}: {run.procedure.procedure.label} "
                f"#{run.procedure.position} interrupted ({run.error})",
                run.change,
            )
            reaped += 1
    return reaped


def run_retry(*, run: ProcedureRun, by) -> ProcedureRun:
    """A person decides to run an interrupted procedure again (a new attempt)."""
    with transaction.atomic(durable=True):
        locked = ProcedureRun.objects.select_for_update().select_related("change").get(pk=run.pk)
        _check_executor(by, locked.change)
        if locked.status != ProcedureRun.Status.INTERRUPTED:
            raise Conflict("Only an interrupted run can be retried.")
        attempt = locked.attempt + 1
        retry = ProcedureRun.objects.create(
            procedure=locked.procedure,
            change=locked.change,
            execution=locked.execution,
            attempt=attempt,
            idempotency_key=f"ex{locked.execution_id}-p{locked.procedure_id}-a{attempt}",
        )
        audit_record(
            action="run.retried",
            user=by,
            role=Role.OPERATIONS,
            obj=locked.change,
            details={"run": locked.pk, "new_run": retry.pk},
        )
        outbox_enqueue(task_name="maintenance.advance_execution", args=[locked.execution_id])
    return retry


def run_abandon(*, run: ProcedureRun, by, reason: str) -> None:
    """A person decides an interrupted run has failed: the change's failure path runs."""
    if not reason.strip():
        raise Invalid("Say why the run is abandoned.")
    with transaction.atomic(durable=True):
        locked = ProcedureRun.objects.select_for_update().select_related("change").get(pk=run.pk)
        _check_executor(by, locked.change)
        if locked.status != ProcedureRun.Status.INTERRUPTED:
            raise Conflict("Only an interrupted run can be abandoned.")
        locked.status = ProcedureRun.Status.FAILED
        locked.error += f"\nAbandoned by {by.get_username()}: {reason.strip()[:1000]}"
        locked.save(update_fields=["status", "error"])
        audit_record(
            action="run.abandoned",
            user=by,
            role=Role.OPERATIONS,
            obj=locked.change,
            details={"run": locked.pk, "reason": reason[:2000]},
        )
        outbox_enqueue(task_name="maintenance.advance_execution", args=[locked.execution_id])


# --- document results -----------------------------------------------------------------------


def review_submit(
    *, change: ChangeRequest, by, outcome: str, notes: str, follow_ups: str = ""
) -> PostImplementationReview:
    if outcome not in PostImplementationReview.Outcome.values:
        raise Invalid("Choose the outcome.")
    if not notes.strip():
        raise Invalid("Write what happened.")
    with transaction.atomic(durable=True):
        locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
        if not (locked.requester_id == by.pk or _is_operator(by)):
            raise NotAllowed("The requester or an operator writes the review.")
        if locked.state not in (State.COMPLETED, State.FAILED, State.ROLLED_BACK):
            raise Conflict("A review is written after the change has run.")
        if PostImplementationReview.objects.filter(change=locked).exists():
            raise Conflict("This change already has its review.")
        review = PostImplementationReview.objects.create(
            change=locked,
            outcome=outcome,
            notes=notes.strip()[:20_000],
            follow_ups=follow_ups.strip()[:20_000],
            reviewed_by=by,
        )
        audit_record(action="change.reviewed", user=by, obj=locked, details={"outcome": outcome})
    return review


def change_close(*, change: ChangeRequest, by) -> ChangeRequest:
    with transaction.atomic(durable=True):
        locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
        if not (locked.requester_id == by.pk or _is_operator(by)):
            raise NotAllowed("The requester or an operator closes the change.")
        if locked.state not in (State.COMPLETED, State.FAILED, State.ROLLED_BACK):
            raise Conflict(f"{locked.public_id} is {locked.get_state_display()}.")
        if not can_proceed(locked.close):
            missing = []
            if not locked.review_done():
                missing.append("its post-implementation review")
            if locked.category == "URGENT" and not locked.retroactive_done():
                missing.append("its retroactive approvals")
            raise Conflict(
                f"{locked.public_id} cannot close yet: it needs {' and '.join(missing)}."
            )
        locked.close()
        locked.closed_at = timezone.now()
        change_save_versioned(locked, ["state", "closed_at"])
        audit_record(action="change.closed", user=by, obj=locked)
    return locked


def execution_report_generate(*, execution_id: int) -> MaintenanceExecution:
    from maintenance.reports import render_pdf

    execution = MaintenanceExecution.objects.select_related("window").get(pk=execution_id)
    filename, pdf = render_pdf(execution)
    from django.core.files.base import ContentFile

    with transaction.atomic(durable=True):
        locked = MaintenanceExecution.objects.select_for_update().get(pk=execution_id)
        if locked.report:
            locked.report.delete(save=False)
        locked.report.save(filename, ContentFile(pdf), save=False)
        locked.report_generated_at = timezone.now()
        locked.save(update_fields=["report", "report_generated_at"])
        audit_record(
            action="execution.report_generated",
            obj=locked.window,
            details={"file": locked.report.name, "bytes": len(pdf)},
        )
    return locked


def window_subscribe(*, window: MaintenanceWindow, by, subscribe: bool = True) -> None:
    with transaction.atomic(durable=True):
        if subscribe:
            window.subscribers.add(by)
        else:
            window.subscribers.remove(by)
        audit_record(
            action="window.subscribed" if subscribe else "window.unsubscribed", user=by, obj=window
        )
