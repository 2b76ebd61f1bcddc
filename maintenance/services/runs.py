"""Procedure runs: claimed by one worker, finished once, reaped when their worker died,
retried or abandoned only by a person; what a step started is recorded so nothing it
started outlives its worker unowned."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_fsm import ConcurrentTransition

from changes.models import State
from maintenance import access
from maintenance.models import MaintenanceIssue, ProcedureRun, ScheduledChange, StepRun
from maintenance.processes import end_process_group, process_group_alive
from maintenance.selectors import window_stakeholders
from maintenance.services.execution import advance_later, issue_record
from portal.audit import audit_record
from portal.errors import Conflict, Invalid
from portal.models import AuditEvent
from portal.notifications import notify
from portal.roles import Role, has_role
from portal.transactions import service

HOST = socket.gethostname()


@service
def run_claim(*, run_id: int, worker: str, now: datetime | None = None) -> ProcedureRun | None:
    """Take a queued run for this worker; None when another delivery already did (a
    duplicate message), so the same run never executes twice."""
    now = now or timezone.now()
    run = (
        ProcedureRun.objects.select_for_update(skip_locked=True)
        .select_related("procedure", "change", "execution__window")
        .filter(pk=run_id, status=ProcedureRun.Status.QUEUED)
        .first()
    )
    if run is None:
        return None
    window = run.execution.window
    slot_ok = ScheduledChange.objects.filter(change=run.change, window=window).exists()
    refusal = None
    if run.change.state != State.IN_PROGRESS or not slot_ok:
        refusal = f"{run.change.public_id} is not an approved change in progress here."
    elif not window.is_open(now):
        refusal = f"The window is not open now (it ends at {window.end:%H:%M} UTC)."
    if refusal:
        run.skip()
        run.finished_at = now
        run.error = f"Not started: {refusal}"
        run.save(update_fields=["status", "finished_at", "error"])
        issue_record(run.execution, MaintenanceIssue.Kind.OVERRUN, run.error, run.change)
        advance_later(run.execution_id)
        return None
    run.claim()
    run.started_at = now
    run.heartbeat_at = now
    run.worker = worker[:255]
    try:
        run.save(update_fields=["status", "started_at", "heartbeat_at", "worker"])
    except ConcurrentTransition:
        return None
    audit_record(
        action="run.started",
        obj=run.change,
        details={"run": run.pk, "kind": run.procedure.kind, "worker": worker},
    )
    return run


_FINISH = {
    ProcedureRun.Status.SUCCEEDED: "succeed",
    ProcedureRun.Status.FAILED: "fail",
    ProcedureRun.Status.ROLLED_BACK: "roll_back",
    ProcedureRun.Status.CANCELLED: "cancel",
    ProcedureRun.Status.INTERRUPTED: "interrupt",
}


@service
def run_finish(
    *, run: ProcedureRun, status: str, error: str = "", result: dict | None = None
) -> None:
    locked = (
        ProcedureRun.objects.select_for_update()
        .select_related("change", "procedure")
        .get(pk=run.pk)
    )
    if locked.status not in (ProcedureRun.Status.RUNNING, ProcedureRun.Status.WAITING):
        return  # the reaper or an operator got there first
    getattr(locked, _FINISH[status])()
    locked.error = error[:10_000]
    locked.finished_at = timezone.now()
    if status == ProcedureRun.Status.SUCCEEDED:
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
        kind = (
            MaintenanceIssue.Kind.INTERRUPTED
            if status == ProcedureRun.Status.INTERRUPTED
            else MaintenanceIssue.Kind.PROCEDURE_FAILED
        )
        issue_record(
            locked.execution,
            kind,
            f"{locked.change.public_id}: {locked.procedure.procedure.label} "
            f"#{locked.procedure.position} {locked.get_status_display().lower()}: "
            f"{error[:300]}",
            locked.change,
        )
    advance_later(locked.execution_id)


@service
def run_wait_for_operator(*, run: ProcedureRun, steps: list[str]) -> None:
    locked = (
        ProcedureRun.objects.select_for_update()
        .select_related("change", "execution")
        .get(pk=run.pk)
    )
    for n, name in enumerate(steps, start=1):
        StepRun.objects.get_or_create(
            run=locked, position=n, defaults={"kind": StepRun.Kind.STEP, "name": name}
        )
    if locked.status != ProcedureRun.Status.RUNNING:
        return
    locked.wait_for_operator()
    locked.save(update_fields=["status"])
    audit_record(action="run.waiting", obj=locked.change, details={"run": locked.pk})
    people = window_stakeholders(locked.execution.window)
    notify(
        recipients=[u for u in people.users if has_role(u, Role.OPERATIONS)],
        subject=f"Checklist waiting: {locked.change.public_id}",
        url=locked.change.get_absolute_url(),
        dedup_key=f"run:{locked.pk}:waiting",
    )


@service
def step_complete(*, step: StepRun, by, evidence: str, passed: bool = True) -> StepRun:
    """An operator ticks a checklist step; evidence is required."""
    if not evidence.strip():
        raise Invalid("Enter an evidence note for this step.")
    run = ProcedureRun.objects.select_for_update().select_related("change").get(pk=step.run_id)
    locked = StepRun.objects.select_for_update().get(pk=step.pk)
    access.require_run(by, run, "step")
    if locked.status != StepRun.Status.PENDING:
        raise Conflict("This step is already done.")
    if run.steps.filter(position__lt=locked.position, status=StepRun.Status.PENDING).exists():
        raise Conflict("Tick the steps in order.")
    now = timezone.now()
    locked.status = StepRun.Status.SUCCEEDED if passed else StepRun.Status.FAILED
    locked.evidence = evidence.strip()[:10_000]
    locked.completed_by = by
    locked.started_at = locked.started_at or now
    locked.finished_at = now
    locked.save(update_fields=["status", "evidence", "completed_by", "started_at", "finished_at"])
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
        run_finish(
            run=run,
            status=ProcedureRun.Status.SUCCEEDED,
            result={"verified": "every step ticked with evidence"},
        )
    return locked


# --- processes a step started -------------------------------------------------------------


@service
def step_process_record(*, step_id: int, pid: int | None = None, backend_pid: int | None = None):
    """Note on the step what it started (a script's process group, a statement's
    backend), so a reaper or a retry can end it. A plain write, no audit: the step's
    start and end are audited with the run."""
    fields = {"process_host": HOST}
    if pid is not None:
        fields.update(process_pid=pid, process_group=pid)
    if backend_pid is not None:
        fields["backend_pid"] = backend_pid
    StepRun.objects.filter(pk=step_id).update(**fields)


def _end_what_it_started(run: ProcedureRun) -> list[str]:
    """End the process group the run's last process-starting step left behind (the one
    running when its worker stopped; earlier steps ended theirs themselves) when it is
    on this host; say what could not be ended (another host's)."""
    step = run.steps.exclude(process_group=None).order_by("-position").first()
    if step is None or run.status not in (
        ProcedureRun.Status.RUNNING,
        ProcedureRun.Status.INTERRUPTED,
    ):
        return []
    if step.process_host != HOST:
        return [f"process group {step.process_group} on {step.process_host} may still run"]
    if process_group_alive(step.process_group) and not end_process_group(step.process_group):
        return [f"process group {step.process_group} did not stop"]
    return []


@service(atomic=False)
def runs_reap_stale(*, now: datetime | None = None) -> int:
    """Mark runs whose worker stopped beating INTERRUPTED, after ending what they
    started; nothing re-runs on its own."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.RUN_STALE_SECONDS)
    stale = list(
        ProcedureRun.objects.filter(
            status=ProcedureRun.Status.RUNNING, heartbeat_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    reaped = 0
    for run_id in stale:
        if _reap_one(run_id=run_id, cutoff=cutoff, now=now):
            reaped += 1
    return reaped


@service
def _reap_one(*, run_id: int, cutoff: datetime, now: datetime) -> bool:
    run = (
        ProcedureRun.objects.select_for_update(skip_locked=True)
        .filter(pk=run_id, status=ProcedureRun.Status.RUNNING, heartbeat_at__lt=cutoff)
        .select_related("change", "execution__window", "procedure")
        .first()
    )
    if run is None:
        return False
    leftovers = _end_what_it_started(run)
    run.interrupt()
    run.finished_at = now
    run.error = (
        f"The worker {run.worker or '(unknown)'} stopped reporting at "
        f"{run.heartbeat_at:%H:%M:%S} UTC. It will not be re-run unless an operator "
        "decides to."
    )
    if leftovers:
        run.error += " Not ended: " + "; ".join(leftovers) + "."
    run.save(update_fields=["status", "finished_at", "error"])
    run.steps.filter(status=StepRun.Status.RUNNING).update(
        status=StepRun.Status.FAILED, finished_at=now
    )
    audit_record(
        action="run.interrupted",
        obj=run.change,
        outcome=AuditEvent.Outcome.FAILURE,
        details={"run": run.pk, "worker": run.worker, "not_ended": leftovers},
    )
    issue_record(
        run.execution,
        MaintenanceIssue.Kind.INTERRUPTED,
        f"{run.change.public_id}: {run.procedure.procedure.label} "
        f"#{run.procedure.position} interrupted ({run.error})",
        run.change,
    )
    return True


@service
def run_retry(*, run: ProcedureRun, by) -> ProcedureRun:
    """A person decides to run an interrupted procedure again (a new attempt), once
    nothing the old attempt started is still running."""
    locked = ProcedureRun.objects.select_for_update().select_related("change").get(pk=run.pk)
    access.require_run(by, locked, "retry")
    leftovers = _end_what_it_started(locked)
    if leftovers:
        raise Conflict(
            "The interrupted attempt may still be running ("
            + "; ".join(leftovers)
            + "); a second copy is not started beside it. End it, then retry."
        )
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
    advance_later(locked.execution_id)
    return retry


@service
def run_abandon(*, run: ProcedureRun, by, reason: str) -> None:
    """A person decides an interrupted run has failed: the change's failure path runs."""
    if not reason.strip():
        raise Invalid("Say why the run is abandoned.")
    locked = ProcedureRun.objects.select_for_update().select_related("change").get(pk=run.pk)
    access.require_run(by, locked, "abandon")
    locked.fail()
    locked.error += f"\nAbandoned by {by.get_username()}: {reason.strip()[:1000]}"
    locked.save(update_fields=["status", "error"])
    audit_record(
        action="run.abandoned",
        user=by,
        role=Role.OPERATIONS,
        obj=locked.change,
        details={"run": locked.pk, "reason": reason[:2000]},
    )
    advance_later(locked.execution_id)


@service
def runs_stop_for_worker(*, worker_node: str, grace_seconds: int, now=None) -> int:
    """The worker ``worker_node`` is stopping: its runs are asked to stop after the
    grace period (their heartbeat threads end the work and mark them INTERRUPTED)."""
    now = now or timezone.now()
    return ProcedureRun.objects.filter(
        status=ProcedureRun.Status.RUNNING, worker__startswith=f"{worker_node}|", stop_at=None
    ).update(stop_at=now + timedelta(seconds=grace_seconds), stop_reason="WORKER_STOP")
