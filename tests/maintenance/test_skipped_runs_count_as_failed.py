"""A run skipped at the cutoff counts as failed in the execution's totals (issue 8,
item 7): completed + failed = total, and the window's record says so.

Before the fix the "failed" status sets of ``_advance_change`` and ``_refresh_counts``
differed: a skipped run was counted neither completed nor failed (2 procedures, 1
completed, 0 failed).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from changes.models import ChangeRequest, State
from maintenance import runner
from maintenance.models import MaintenanceExecution, MaintenanceWindow, ProcedureRun, WindowType
from maintenance.services import execution_advance, window_start
from portal.models import AuditEvent, Notification
from tests.factories import ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    schedule_all,
    with_procedure,
    write_scripts,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scripts(tmp_path, settings):
    settings.MAINTENANCE_SCRIPTS_DIR = str(write_scripts(tmp_path / "scripts"))
    calm_calendar()
    return tmp_path / "scripts"


def test_a_run_skipped_at_the_cutoff_counts_as_failed(scripts, requester, operator, tenant):
    component = ComponentFactory(name="claims-api")
    quick = with_procedure(
        approved_change(requester, tenant, component, title="Quick fix", minutes=1),
        requester,
        "maintenance_script",
        script="succeed.sh",
        arguments="0",
        timeout_seconds="30",
    )
    # May take 10 minutes: it cannot finish in what is left of a 5-minute window.
    long = with_procedure(
        approved_change(requester, tenant, component, title="Long job", minutes=1),
        requester,
        "maintenance_script",
        script="slow.sh",
        timeout_seconds="600",
    )
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() + timedelta(hours=2),
        duration_minutes=5,
        notification_offsets=[60],
    )
    schedule_all([quick, long], window, operator)
    MaintenanceWindow.objects.filter(pk=window.pk).update(
        start=timezone.now() - timedelta(seconds=1)
    )

    # The framework's own services and runner, in this thread: no broker needed.
    execution = window_start(window=MaintenanceWindow.objects.get(pk=window.pk), by=operator)
    assert execution_advance(execution_id=execution.pk) == "waiting"
    runner.execute_run(run_id=ProcedureRun.objects.get(change=quick).pk)
    assert execution_advance(execution_id=execution.pk) == "finished"

    skipped = ProcedureRun.objects.get(change=long)
    assert skipped.status == ProcedureRun.Status.SKIPPED
    execution = MaintenanceExecution.objects.get(pk=execution.pk)
    assert (
        execution.procedures_total,
        execution.procedures_completed,
        execution.procedures_failed,
    ) == (2, 1, 1)
    assert execution.status == MaintenanceExecution.Status.FAILED
    assert ChangeRequest.objects.get(pk=quick.pk).state == State.COMPLETED
    assert ChangeRequest.objects.get(pk=long.pk).state == State.FAILED
    finished = AuditEvent.objects.get(action="window.failed")
    assert (finished.details["total"], finished.details["failed"]) == (2, 1)
    told = Notification.objects.filter(dedup_key=f"window:{window.pk}:finished").first()
    assert told.body == "1 of 2 procedures completed, 1 failed."


def test_every_unsuccessful_status_counts_as_failed():
    """One home for each status group: the totals and the engine read the same names."""
    unsuccessful = set(ProcedureRun.UNSUCCESSFUL)

    assert {"FAILED", "ROLLED_BACK", "CANCELLED", "SKIPPED", "INTERRUPTED"} == unsuccessful
    assert not unsuccessful & {"SUCCEEDED", "PENDING", "QUEUED", "RUNNING", "WAITING"}
