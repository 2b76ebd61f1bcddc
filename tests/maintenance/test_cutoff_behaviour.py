"""What happens at a window's end to a procedure still running (issue 8, item 6), with
a real worker: CONTINUE keeps it running and records an overrun once, notifying the
stakeholders; CANCEL ends a script's process group, runs its rollback and marks the run
cancelled; a checklist still waiting is cancelled; an execution that ends after the
window is an overrun.

Before the fix ``RunContext.window_end`` was never read: nothing happened at the end.

The windows are created in the table and opened by moving their start to now; "the
clock passes the window's end" is done by moving the window back in the table while the
procedure runs, instead of waiting for a real end: the beat service ``cutoffs_enforce``
then reads the real time.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from changes.models import ChangeRequest, State
from maintenance.models import (
    Cutoff,
    MaintenanceExecution,
    MaintenanceIssue,
    MaintenanceWindow,
    ProcedureRun,
    StepRun,
    WindowType,
)
from maintenance.services import cutoffs_enforce, window_start
from maintenance.services.runs import process_group_alive
from portal.models import AuditEvent, Notification
from tests.factories import ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    ran_lines,
    schedule_all,
    wait_until,
    with_procedure,
    write_scripts,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def scripts(tmp_path, settings):
    settings.MAINTENANCE_SCRIPTS_DIR = str(write_scripts(tmp_path / "scripts"))
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # The run's heartbeat thread notices a stop request within a second.
    settings.RUN_HEARTBEAT_SECONDS = 1
    calm_calendar()
    return tmp_path / "scripts"


def _open_window(cutoff: str, changes, operator, minutes: int = 30) -> MaintenanceWindow:
    """A window the changes are scheduled in (ahead, as scheduling requires), which then
    opens: its start moved to a second ago."""
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() + timedelta(hours=2),
        duration_minutes=minutes,
        notification_offsets=[60],
        cutoff_behavior=cutoff,
        title=f"Cutoff {cutoff.lower()} window",
    )
    schedule_all(changes, window, operator)
    MaintenanceWindow.objects.filter(pk=window.pk).update(
        start=timezone.now() - timedelta(seconds=1)
    )
    return MaintenanceWindow.objects.get(pk=window.pk)


def _pass_the_end(window: MaintenanceWindow) -> None:
    """The window ended a second ago (its start moved back by its length)."""
    MaintenanceWindow.objects.filter(pk=window.pk).update(
        start=timezone.now() - timedelta(minutes=window.duration_minutes, seconds=1)
    )


def _running(change) -> ProcedureRun:
    return wait_until(
        lambda: (
            ProcedureRun.objects.filter(change=change, status="RUNNING")
            .filter(steps__kind="STEP", steps__process_group__isnull=False)
            .first()
        ),
        what="the script to be running",
    )


def _finished(change) -> ProcedureRun:
    return wait_until(
        lambda: ProcedureRun.objects.filter(
            change=change, status__in=ProcedureRun.FINISHED
        ).first(),
        timeout=60,
        what="the run to finish",
    )


def _execution_over(execution) -> MaintenanceExecution:
    return wait_until(
        lambda: (
            MaintenanceExecution.objects.exclude(status="IN_PROGRESS")
            .filter(pk=execution.pk)
            .first()
        ),
        timeout=60,
        what="the execution to end",
    )


def _script_change(requester, tenant, title: str, **params):
    return with_procedure(
        approved_change(requester, tenant, ComponentFactory(name="claims-api"), title=title),
        requester,
        "maintenance_script",
        **params,
    )


def test_continue_keeps_the_run_going_and_records_one_overrun(
    celery_worker, scripts, requester, operator, tenant
):
    change = _script_change(
        requester, tenant, "Rebuild search index", script="succeed.sh", arguments="4",
        timeout_seconds="60", expect_output="all good",
    )  # fmt: skip
    window = _open_window(Cutoff.CONTINUE, [change], operator)
    execution = window_start(window=window, by=operator)
    run = _running(change)
    _pass_the_end(window)

    assert cutoffs_enforce() == 1
    assert cutoffs_enforce() == 1  # beat ticks again while it still runs

    overruns = MaintenanceIssue.objects.filter(execution=execution, kind="OVERRUN", change=change)
    assert overruns.count() == 1
    assert "it continues (cutoff: continue)" in overruns.get().message
    told = Notification.objects.filter(subject__startswith="Maintenance issue (OVERRUN)")
    assert sorted(told.values_list("recipient__username", flat=True)) == ["operator", "requester"]
    assert ProcedureRun.objects.get(pk=run.pk).stop_at is None

    run = _finished(change)
    assert run.status == ProcedureRun.Status.SUCCEEDED, run.error
    assert "all good" in run.steps.get(kind="STEP").output
    execution = _execution_over(execution)
    # It ended after the window: that is an overrun too, and the window is not a success.
    ended_late = execution.issues.filter(kind="OVERRUN", change=None)
    assert ended_late.count() == 1
    assert "after the window's end" in ended_late.get().message
    assert execution.status == MaintenanceExecution.Status.FAILED
    assert ChangeRequest.objects.get(pk=change.pk).state == State.COMPLETED


def test_cancel_ends_the_scripts_process_group_and_rolls_back(
    celery_worker, scripts, requester, operator, tenant
):
    change = _script_change(
        requester, tenant, "Migrate claims schema", script="slow.sh", timeout_seconds="120",
        rollback_script="undo.sh",
    )  # fmt: skip
    window = _open_window(Cutoff.CANCEL, [change], operator)
    execution = window_start(window=window, by=operator)
    run = _running(change)
    group = run.steps.get(kind="STEP").process_group
    assert process_group_alive(group)
    _pass_the_end(window)

    assert cutoffs_enforce() == 1

    requested = ProcedureRun.objects.get(pk=run.pk)
    assert requested.stop_reason == "CUTOFF" and requested.stop_at is not None
    assert AuditEvent.objects.filter(action="run.stop_requested").count() == 1
    run = _finished(change)
    assert run.status == ProcedureRun.Status.CANCELLED
    # Ended: the group's last member is gone once init has reaped it.
    wait_until(lambda: not process_group_alive(group), timeout=10, what="the group to be gone")
    assert [line.split()[0] for line in ran_lines(scripts)] == ["slow", "undo"]
    steps = list(run.steps.order_by("position").values_list("kind", "status"))
    assert steps == [
        (StepRun.Kind.PRECHECK, StepRun.Status.SUCCEEDED),
        (StepRun.Kind.STEP, StepRun.Status.FAILED),
        (StepRun.Kind.ROLLBACK, StepRun.Status.SUCCEEDED),
    ]
    assert "window's end" in run.steps.get(kind="STEP").output
    assert "finished" not in run.steps.get(kind="STEP").output  # slow.sh never got there
    execution = _execution_over(execution)
    assert execution.issues.filter(
        kind="OVERRUN", change=change, message__contains="is cancelled (cutoff: cancel)"
    ).exists()
    assert (execution.procedures_total, execution.procedures_failed) == (1, 1)
    assert ChangeRequest.objects.get(pk=change.pk).state == State.ROLLED_BACK


def test_cancel_ends_a_checklist_still_waiting_for_the_operator(
    celery_worker, scripts, requester, operator, tenant
):
    change = with_procedure(
        approved_change(requester, tenant, ComponentFactory(name="lb"), title="Fail over"),
        requester,
        "manual_checklist",
        steps="Drain node A\nSwitch the VIP",
        estimated_minutes="10",
    )
    window = _open_window(Cutoff.CANCEL, [change], operator)
    execution = window_start(window=window, by=operator)
    run = wait_until(
        lambda: ProcedureRun.objects.filter(change=change, status="WAITING").first(),
        what="the checklist to wait",
    )
    _pass_the_end(window)

    assert cutoffs_enforce() == 1

    run.refresh_from_db()
    assert run.status == ProcedureRun.Status.CANCELLED
    assert "Cancelled at the window's end" in run.error
    assert AuditEvent.objects.filter(action="run.cancelled").count() == 1
    execution = _execution_over(execution)
    assert execution.procedures_failed == 1
    assert ChangeRequest.objects.get(pk=change.pk).state in (State.FAILED, State.ROLLED_BACK)


def test_nothing_happens_to_a_run_before_the_windows_end(
    celery_worker, scripts, requester, operator, tenant
):
    change = _script_change(
        requester, tenant, "Quick job", script="succeed.sh", arguments="2", timeout_seconds="30"
    )
    window = _open_window(Cutoff.CANCEL, [change], operator)
    execution = window_start(window=window, by=operator)
    _running(change)

    assert cutoffs_enforce() == 0

    assert _finished(change).status == ProcedureRun.Status.SUCCEEDED
    assert not MaintenanceIssue.objects.filter(execution=execution).exists()
    assert _execution_over(execution).status == MaintenanceExecution.Status.COMPLETED
