"""Running a window: start it, advance its changes in order, enforce its cutoff, finish
it (seed: trackMaintenance — update status, log progress, notify on issues, report)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from changes import services as change_services
from changes.models import ChangeRequest, State
from maintenance import access
from maintenance.models import (
    ChangeProcedure,
    Cutoff,
    MaintenanceExecution,
    MaintenanceIssue,
    MaintenanceWindow,
    ProcedureRun,
)
from maintenance.procedures import registry
from maintenance.selectors import window_stakeholders
from portal.audit import audit_record
from portal.errors import Conflict
from portal.models import AuditEvent
from portal.notifications import notify
from portal.outbox import outbox_enqueue
from portal.roles import Role
from portal.transactions import service

# A change in one of these states has nothing more to do in the window.
SETTLED_STATES = (
    State.COMPLETED,
    State.FAILED,
    State.ROLLED_BACK,
    State.CLOSED,
    State.CANCELLED,
    State.REJECTED,
    State.IN_REVIEW,
    State.APPROVED,
)


@service
def advance_later(execution_id: int) -> None:
    outbox_enqueue(task_name="maintenance.advance_execution", args=[execution_id])


@service
def issue_record(
    execution: MaintenanceExecution,
    kind: str,
    message: str,
    change: ChangeRequest | None = None,
    *,
    once: bool = False,
) -> MaintenanceIssue | None:
    """Record an issue, audit it and tell the window's stakeholders (seed: notify on
    issues). ``once``: not again if the same kind is already recorded for the change."""
    if (
        once
        and MaintenanceIssue.objects.filter(
            execution=execution, kind=kind, change=change, message=message
        ).exists()
    ):
        return None
    issue = MaintenanceIssue.objects.create(
        execution=execution, kind=kind, message=message, change=change
    )
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
    notify(
        recipients=window_stakeholders(execution.window).users,
        subject=f"Maintenance issue ({kind}): {message[:120]}",
        body=message,
        url=execution.window.get_absolute_url(),
        dedup_key=f"issue:{issue.pk}",
    )
    return issue


@service
def window_start(
    *, window: MaintenanceWindow, by=None, now: datetime | None = None
) -> MaintenanceExecution:
    """Start a window's execution: by an operator, or by beat (by=None) at its start."""
    now = now or timezone.now()
    locked = MaintenanceWindow.objects.select_for_update().get(pk=window.pk)
    if by is not None:
        access.require_window(by, locked, "start")
    elif locked.status != MaintenanceWindow.Status.PLANNED:
        raise Conflict(f"The window is {locked.get_status_display().lower()}.")
    elif not locked.is_open(now):
        raise Conflict("The window is not open now.")
    execution, _ = MaintenanceExecution.objects.get_or_create(
        window=locked, defaults={"planned_at": locked.start}
    )
    execution.begin()
    execution.started_at = now
    execution.started_by = by
    execution.save(update_fields=["status", "started_at", "started_by"])
    locked.start_execution()
    locked.save(update_fields=["status"])
    audit_record(
        action="window.started",
        user=by,
        role=Role.OPERATIONS if by else "",
        obj=locked,
        details={"execution": execution.pk},
    )
    advance_later(execution.pk)
    return execution


@service(atomic=False)
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


def _refresh_counts(execution: MaintenanceExecution) -> None:
    """Seed procedures {total, completed, failed}: the latest attempt of each."""
    latest: dict[int, str] = {}
    for run in ProcedureRun.objects.filter(execution=execution).order_by("procedure_id", "attempt"):
        latest[run.procedure_id] = run.status
    statuses = list(latest.values())
    execution.procedures_total = len(statuses)
    execution.procedures_completed = statuses.count(ProcedureRun.Status.SUCCEEDED)
    execution.procedures_failed = sum(1 for s in statuses if s in ProcedureRun.UNSUCCESSFUL)
    execution.save(update_fields=["procedures_total", "procedures_completed", "procedures_failed"])


@service
def execution_advance(*, execution_id: int, now: datetime | None = None) -> str:
    """Move a window's execution on by what can be done now; safe to call any time and
    twice. Changes run in order; a change's procedures run one at a time."""
    now = now or timezone.now()
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
        _finish(execution, now=now)
    return result


def _advance_change(execution, window, change: ChangeRequest, *, now) -> str:
    if change.state in SETTLED_STATES:
        return "done"
    if change.state == State.SCHEDULED:
        if now >= window.end:
            issue_record(
                execution,
                MaintenanceIssue.Kind.OVERRUN,
                f"{change.public_id} was not started: the window ended at {window.end:%H:%M} UTC.",
                change,
                once=True,
            )
            return "done"
        change = change_services.change_start(
            change=change, by=execution.started_by, details={"window": window.pk}, now=now
        )
        for item in change.procedures.order_by("position"):
            ProcedureRun.objects.get_or_create(
                idempotency_key=f"ex{execution.pk}-p{item.pk}-a1",
                defaults={"procedure": item, "change": change, "execution": execution},
            )
    if change.state == State.VERIFYING:
        return "waiting"  # a change implemented by hand waits for its verification
    items = list(change.procedures.order_by("position"))
    if not items:
        return "waiting"  # implemented by hand: an operator marks it implemented
    latest: dict[int, ProcedureRun] = {}
    for run in ProcedureRun.objects.filter(execution=execution, change=change).order_by("attempt"):
        latest[run.procedure_id] = run
    for item in items:
        run = latest.get(item.pk)
        if run is None or run.status == ProcedureRun.Status.SUCCEEDED:
            continue
        if run.status in ProcedureRun.ACTIVE or run.status in ProcedureRun.NEEDS_DECISION:
            return "waiting"
        if run.status in ProcedureRun.UNSUCCESSFUL:
            _fail_change(change, latest, now=now)
            return "done"
        # PENDING: start it, unless it would start or run past the window's end.
        if not _may_start(execution, window, change, item, run, now=now):
            _fail_change(change, latest, now=now)
            return "done"
        run.queue()
        run.queued_at = now
        run.save(update_fields=["status", "queued_at"])
        outbox_enqueue(
            task_name="maintenance.execute_run",
            args=[run.pk],
            queue=registry.get(item.kind).queue_for(item.params),
        )
        return "waiting"
    change_services.change_procedures_succeeded(change=change, procedures=len(items), now=now)
    return "done"


def _may_start(execution, window, change, item: ChangeProcedure, run, *, now) -> bool:
    """No procedure starts past the window's end or when it could not finish before it
    (its expected duration, from its parameters and the target's past runs)."""
    minutes = registry.get(item.kind).max_minutes(item.params)
    if now < window.end and now + timedelta(minutes=minutes) <= window.end:
        return True
    run.skip()
    run.finished_at = now
    run.error = (
        f"Not started: the window ends at {window.end:%H:%M} UTC and this procedure may "
        f"take {minutes} min."
    )
    run.save(update_fields=["status", "finished_at", "error"])
    issue_record(
        execution,
        MaintenanceIssue.Kind.OVERRUN,
        f"{change.public_id}: {item.procedure.label} #{item.position} not started, the "
        f"window ends at {window.end:%H:%M} UTC (cutoff).",
        change,
    )
    return False


def _fail_change(change: ChangeRequest, latest: dict[int, ProcedureRun], *, now) -> None:
    for run in latest.values():
        if run.status == ProcedureRun.Status.PENDING:
            run.skip()
            run.finished_at = now
            run.error = "Not started: an earlier procedure of this change failed."
            run.save(update_fields=["status", "finished_at", "error"])
    statuses = {r.status for r in latest.values()}
    rolled_back = (
        ProcedureRun.Status.ROLLED_BACK in statuses or ProcedureRun.Status.CANCELLED in statuses
    ) and ProcedureRun.Status.FAILED not in statuses
    change_services.change_fail(change=change, rolled_back=rolled_back, now=now)


def _finish(execution: MaintenanceExecution, *, now) -> None:
    window = execution.window
    if now > window.end:
        late = int((now - window.end).total_seconds() // 60)
        issue_record(
            execution,
            MaintenanceIssue.Kind.OVERRUN,
            f"The execution ended {late} min after the window's end ({window.end:%H:%M} UTC).",
            once=True,
        )
    states = list(ChangeRequest.objects.filter(slot__window=window).values_list("state", flat=True))
    ok = (
        all(s in (State.COMPLETED, State.CLOSED) for s in states)
        and not execution.procedures_failed
        and not execution.issues.filter(kind=MaintenanceIssue.Kind.OVERRUN).exists()
    )
    if ok:
        execution.complete()
        window.complete()
    else:
        execution.fail()
        window.fail()
    execution.completed_at = now
    execution.save(update_fields=["status", "completed_at"])
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
    notify(
        recipients=window_stakeholders(window).users,
        subject=f"{window.label} {execution.get_status_display().lower()}",
        body=(
            f"{execution.procedures_completed} of {execution.procedures_total} procedures "
            f"completed, {execution.procedures_failed} failed."
        ),
        url=window.get_absolute_url(),
        dedup_key=f"window:{window.pk}:finished",
    )


# --- the window's end ------------------------------------------------------------------


@service(atomic=False)
def cutoffs_enforce(*, now: datetime | None = None) -> int:
    """Beat: what happens at a window's end to work still running (AWS Maintenance
    Windows' cutoff behaviour). CONTINUE: it keeps running, an overrun issue is recorded
    and stakeholders told, once. CANCEL: each running run is asked to stop now (its own
    heartbeat thread cancels the statement or ends the script's process group, runs the
    rollback and marks it cancelled); a checklist waiting for an operator is cancelled."""
    now = now or timezone.now()
    handled = 0
    executions = MaintenanceExecution.objects.filter(
        status=MaintenanceExecution.Status.IN_PROGRESS
    ).select_related("window")
    for execution in executions:
        if execution.window.end > now:
            continue
        handled += _cutoff_one(execution_id=execution.pk, now=now)
    return handled


@service
def _cutoff_one(*, execution_id: int, now: datetime) -> int:
    execution = (
        MaintenanceExecution.objects.select_for_update()
        .select_related("window")
        .get(pk=execution_id)
    )
    window = execution.window
    runs = list(
        ProcedureRun.objects.select_for_update()
        .filter(
            execution=execution,
            status__in=[ProcedureRun.Status.RUNNING, ProcedureRun.Status.WAITING],
        )
        .select_related("change", "procedure")
    )
    for run in runs:
        label = f"{run.change.public_id}: {run.procedure.procedure.label} #{run.procedure.position}"
        if window.cutoff_behavior == Cutoff.CANCEL:
            if run.status == ProcedureRun.Status.WAITING:
                run.cancel()
                run.finished_at = now
                run.error = f"Cancelled at the window's end ({window.end:%H:%M} UTC)."
                run.save(update_fields=["status", "finished_at", "error"])
                audit_record(
                    action="run.cancelled",
                    obj=run.change,
                    outcome=AuditEvent.Outcome.FAILURE,
                    details={"run": run.pk, "reason": "cutoff"},
                )
                advance_later(execution.pk)
            elif run.stop_at is None:
                run.stop_at = now
                run.stop_reason = "CUTOFF"
                run.save(update_fields=["stop_at", "stop_reason"])
                audit_record(
                    action="run.stop_requested",
                    obj=run.change,
                    details={"run": run.pk, "reason": "cutoff"},
                )
            issue_record(
                execution,
                MaintenanceIssue.Kind.OVERRUN,
                f"{label} was still running at the window's end "
                f"({window.end:%H:%M} UTC) and is cancelled (cutoff: cancel).",
                run.change,
                once=True,
            )
        else:
            issue_record(
                execution,
                MaintenanceIssue.Kind.OVERRUN,
                f"{label} is still running after the window's end ({window.end:%H:%M} UTC); "
                "it continues (cutoff: continue).",
                run.change,
                once=True,
            )
    return len(runs)
