"""A database procedure at its window's end (issue 8, item 6): under a CANCEL policy a
VACUUM still running is cancelled with ``pg_cancel_backend`` and its run ends CANCELLED;
VACUUM's expected duration (the cutoff's "could it finish?") comes from the tables' size
and the target's past runs, not a fixed 30 minutes.

The VACUUM is made slow the way a busy server makes it slow: cost-based delay, set on
the test's own target database (never on the server).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from psycopg import sql

from changes.models import ChangeRequest, State
from dbops.procedures.tables import MB, Vacuum
from maintenance.models import (
    ChangeProcedure,
    Cutoff,
    MaintenanceExecution,
    MaintenanceWindow,
    ProcedureRun,
    StepRun,
    WindowType,
)
from maintenance.services import cutoffs_enforce, window_start
from tests.factories import ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    schedule_all,
    wait_until,
    with_procedure,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _vacuuming(target_db, pid: int) -> bool:
    with target_db.connect() as conn:
        row = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s AND state = 'active'", [pid]
        ).fetchone()
    return bool(row and row[0].upper().startswith("VACUUM"))


def _vacuum_count(target_db, table: str) -> int:
    with target_db.connect() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = %s", [table]
        ).fetchone()[0]


@pytest.mark.worker
def test_cancel_cancels_a_running_vacuum_at_the_windows_end(
    celery_worker, settings, target_db, make_target, requester, operator, tenant
):
    settings.RUN_HEARTBEAT_SECONDS = 1
    calm_calendar()
    target_db.run(
        "CREATE TABLE big_claims (id int, note text) WITH (autovacuum_enabled = false)",
        "INSERT INTO big_claims SELECT g, repeat('x', 200) FROM generate_series(1, 40000) g",
        "DELETE FROM big_claims WHERE id % 2 = 0",
        "ANALYZE big_claims",
    )
    with target_db.connect() as conn:
        for name, value in (("vacuum_cost_delay", "100ms"), ("vacuum_cost_limit", "1")):
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(target_db.name), sql.Identifier(name), sql.Literal(value)
                )
            )
    target = make_target()
    change = with_procedure(
        approved_change(requester, tenant, ComponentFactory(name="claims-db"), title="VACUUM"),
        operator,
        "db_vacuum",
        target=str(target.pk),
        tables=["public.big_claims"],
    )
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() + timedelta(hours=2),
        duration_minutes=30,
        notification_offsets=[60],
        cutoff_behavior=Cutoff.CANCEL,
    )
    schedule_all([change], window, operator)
    MaintenanceWindow.objects.filter(pk=window.pk).update(
        start=timezone.now() - timedelta(seconds=1)
    )
    execution = window_start(window=MaintenanceWindow.objects.get(pk=window.pk), by=operator)
    step = wait_until(
        lambda: StepRun.objects.filter(
            run__change=change,
            name="VACUUM each table",
            status="RUNNING",
            backend_pid__isnull=False,
        ).first(),
        timeout=60,
        what="the VACUUM to be running",
    )
    wait_until(lambda: _vacuuming(target_db, step.backend_pid), what="the VACUUM statement")

    # The window ends (moved back in the table) and beat enforces the cutoff.
    MaintenanceWindow.objects.filter(pk=window.pk).update(
        start=timezone.now() - timedelta(minutes=31)
    )
    assert cutoffs_enforce() == 1

    run = wait_until(
        lambda: ProcedureRun.objects.filter(
            change=change, status__in=ProcedureRun.FINISHED
        ).first(),
        timeout=30,
        what="the run to end",
    )
    assert run.status == ProcedureRun.Status.CANCELLED, run.error
    assert not _vacuuming(target_db, step.backend_pid)
    step.refresh_from_db()
    assert step.status == StepRun.Status.FAILED
    assert "cancelled (Stopped at the window's end (cutoff: cancel).)" in step.output
    assert _vacuum_count(target_db, "big_claims") == 0  # a cancelled VACUUM does not count
    execution = wait_until(
        lambda: (
            MaintenanceExecution.objects.exclude(status="IN_PROGRESS")
            .filter(pk=execution.pk)
            .first()
        ),
        timeout=30,
        what="the execution to end",
    )
    assert execution.issues.filter(kind="OVERRUN", change=change).exists()
    assert execution.procedures_failed == 1
    assert ChangeRequest.objects.get(pk=change.pk).state in (State.FAILED, State.ROLLED_BACK)


# --- expected duration ------------------------------------------------------------------------


def _past_run(target, *, seconds: float, size: int, requester, tenant, operator) -> None:
    """A successful VACUUM of ``size`` bytes in ``seconds`` on ``target``, on record."""
    change = approved_change(requester, tenant, ComponentFactory(), title="Earlier VACUUM")
    item = ChangeProcedure.objects.create(
        change=change,
        position=1,
        kind="db_vacuum",
        params={"target": target.pk, "tables": [["public", "t"]]},
        added_by=operator,
    )
    window = MaintenanceWindow.objects.create(
        type=WindowType.EMERGENCY, start=timezone.now() - timedelta(days=7), duration_minutes=60
    )
    execution = MaintenanceExecution.objects.create(window=window, planned_at=window.start)
    ProcedureRun.objects.create(
        procedure=item,
        change=change,
        execution=execution,
        idempotency_key=f"past-{item.pk}",
        status=ProcedureRun.Status.SUCCEEDED,
        finished_at=timezone.now() - timedelta(days=7),
        result={"timings": {"public.t": seconds}, "est_bytes": {"public.t": size}},
    )


def test_vacuum_expects_longer_for_larger_tables():
    vacuum = Vacuum()

    small = vacuum.max_minutes({"target": 1, "estimated_bytes": 10 * MB})
    large = vacuum.max_minutes({"target": 1, "estimated_bytes": 10_000 * MB})
    full = vacuum.max_minutes({"target": 1, "estimated_bytes": 10_000 * MB, "full": True})

    assert small == 2  # a few seconds of work, a minute for the checks
    assert large == 14  # 10 000 MB at 20 MB/s, half again as margin, plus the checks
    assert full > large  # FULL rewrites the table: half the throughput
    assert large != 30


def test_vacuum_learns_the_targets_speed_from_its_past_runs(
    make_target, requester, tenant, operator
):
    slow_target, other_target = make_target(name="slow-db"), make_target(name="other-db")
    # The slow target vacuumed 100 MB in 100 s: 1 MB/s, not the assumed 20 MB/s.
    _past_run(
        slow_target, seconds=100.0, size=100 * MB, requester=requester, tenant=tenant,
        operator=operator,
    )  # fmt: skip
    vacuum = Vacuum()

    learned = vacuum.max_minutes({"target": slow_target.pk, "estimated_bytes": 600 * MB})
    assumed = vacuum.max_minutes({"target": other_target.pk, "estimated_bytes": 600 * MB})

    assert learned == 16  # 600 s of work, half again: 15 min, plus one for the checks
    assert assumed == 2
