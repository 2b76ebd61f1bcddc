"""A queue per database target (DESIGN section 5, issue 13): a database procedure's run
goes to its target's queue, workers can be started per queue, runportal's worker
consumes them all, and a long VACUUM on one target does not hold up another target's
procedure (real worker processes, one per queue, as a deployment runs them)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.utils import timezone
from psycopg import sql

from dbops.procedures.common import target_queue, target_queues
from maintenance.models import MaintenanceWindow, ProcedureRun, StepRun, WindowType
from maintenance.procedures import registry
from maintenance.services import execution_advance, window_start
from portal.management.commands.runportal import portal_commands
from portal.models import OutboxMessage
from tests.bench.drills.harness import Processes, portal_env, wait_for
from tests.factories import ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    schedule_all,
    wait_until,
    with_procedure,
)

DATABASE_KINDS = [
    "db_vacuum",
    "db_analyze",
    "db_reindex",
    "db_upgrade",
    "db_create_index",
    "db_configuration",
    "db_system_tuning",
]


def test_each_database_procedure_names_its_targets_queue(settings):
    settings.DBOPS_TARGET_QUEUES = 8
    for kind in DATABASE_KINDS:
        procedure = registry.get(kind)
        assert procedure.queue_for({"target": 3}) == "dbops.target.3", kind
        assert procedure.queue_for({"target": "11"}) == "dbops.target.3", kind
        assert procedure.queue_for({"target": 12}) == "dbops.target.4", kind


def test_procedures_without_a_target_use_the_default_queue():
    assert registry.get("manual_checklist").queue_for({"items": ["a"]}) == ""
    assert registry.get("maintenance_script").queue_for({"script": "x.sh"}) == ""
    assert registry.get("db_vacuum").queue_for({}) == ""


def test_there_are_as_many_target_queues_as_configured(settings):
    settings.DBOPS_TARGET_QUEUES = 3
    assert target_queues() == ["dbops.target.0", "dbops.target.1", "dbops.target.2"]
    assert {target_queue(n) for n in range(30)} == set(target_queues())


def test_runportals_worker_consumes_the_default_queue_and_every_target_queue():
    command = portal_commands(bind="127.0.0.1:0", sqlite=False)["worker"]
    queues = command[command.index("--queues") + 1].split(",")
    assert queues[0] == "celery"
    assert queues[1:] == target_queues()


@pytest.mark.django_db(transaction=True)
def test_a_run_is_published_on_its_targets_queue(
    target_db, make_target, requester, operator, tenant
):
    calm_calendar()
    target_db.run("CREATE TABLE orders (id int)")
    target = make_target()
    change = with_procedure(
        approved_change(requester, tenant, ComponentFactory(name="orders-db"), title="VACUUM"),
        operator,
        "db_vacuum",
        target=str(target.pk),
        tables=["public.orders"],
    )
    window = _open_window()
    schedule_all([change], window, operator)
    _started(window, operator)
    execution_advance(execution_id=MaintenanceWindow.objects.get(pk=window.pk).execution.pk)
    message = OutboxMessage.objects.get(task_name="maintenance.execute_run")
    assert message.queue == target_queue(target.pk)


# --- real workers, one per queue -------------------------------------------------------


def _open_window() -> MaintenanceWindow:
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() + timedelta(hours=3),
        duration_minutes=120,
        notification_offsets=[60],
    )
    return window


def _started(window: MaintenanceWindow, operator) -> None:
    MaintenanceWindow.objects.filter(pk=window.pk).update(
        start=timezone.now() - timedelta(seconds=1)
    )
    window_start(window=MaintenanceWindow.objects.get(pk=window.pk), by=operator)


def _worker(processes: Processes, name: str, queues: list[str]) -> None:
    command = portal_commands(bind="127.0.0.1:0", sqlite=False)["worker"]
    command[command.index("--queues") + 1] = ",".join(queues)
    command[command.index("--concurrency") + 1] = "1"
    command[command.index("--hostname") + 1] = f"{name}@%h"
    processes.start(name, command)
    wait_for(
        lambda: "ready." in processes.log(name, tail=200_000),
        what=f"worker {name} ready",
        procs=[processes.procs[name]],
        timeout=90,
    )


@pytest.fixture
def queue_workers(tmp_path: Path, transactional_db):
    db = settings.DATABASES["default"]
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    user = db["USER"] or "postgres"
    if db.get("PASSWORD"):
        user += ":" + quote(db["PASSWORD"], safe="")
    url = f"postgres://{user}@{host}/{db['NAME']}"
    env = portal_env(database_url=url, broker_url=settings.CELERY_BROKER_URL, var_dir=tmp_path)
    env["RUN_HEARTBEAT_SECONDS"] = "1"
    processes = Processes(env, tmp_path)
    from portal.celery import app

    app.control.purge()
    yield processes
    processes.stop_all()


@pytest.mark.worker
def test_a_long_vacuum_on_one_target_does_not_delay_another_targets_procedure(
    queue_workers, target_db, make_target, pg_server, requester, operator, tenant
):
    calm_calendar()
    # Target A: a VACUUM made slow the way a busy server makes it slow (cost delay on the
    # test's own database). Target B: a small table in a database of its own.
    target_db.run(
        "CREATE TABLE big_claims (id int, note text) WITH (autovacuum_enabled = false)",
        "INSERT INTO big_claims SELECT g, repeat('x', 200) FROM generate_series(1, 40000) g",
        "DELETE FROM big_claims WHERE id % 2 = 0",
    )
    with target_db.connect() as conn:
        for name, value in (("vacuum_cost_delay", "100ms"), ("vacuum_cost_limit", "1")):
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(target_db.name), sql.Identifier(name), sql.Literal(value)
                )
            )
    other = f"{target_db.name}_b"
    with pg_server.connect("postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(other)))
    try:
        with pg_server.connect(other) as conn:
            conn.execute(
                "CREATE TABLE small_claims AS SELECT g AS id FROM generate_series(1, 100) g"
            )
        slow, fast = make_target(name="slow-db"), make_target(name="fast-db", database=other)
        assert target_queue(slow.pk) != target_queue(fast.pk)
        _worker(queue_workers, "default", ["celery"])
        _worker(queue_workers, "slow", [target_queue(slow.pk)])
        _worker(queue_workers, "fast", [target_queue(fast.pk)])

        changes = {}
        for target, table in ((slow, "public.big_claims"), (fast, "public.small_claims")):
            changes[target.pk] = with_procedure(
                approved_change(
                    requester, tenant, ComponentFactory(name=f"{target.name}-c"), title="VACUUM"
                ),
                operator,
                "db_vacuum",
                target=str(target.pk),
                tables=[table],
            )
        windows = {pk: _open_window() for pk in changes}
        for pk, change in changes.items():
            schedule_all([change], windows[pk], operator)

        _started(windows[slow.pk], operator)
        wait_until(
            lambda: StepRun.objects.filter(
                run__change=changes[slow.pk], name="VACUUM each table", status="RUNNING"
            ).exists(),
            timeout=90,
            what="target A's VACUUM to be running",
        )
        started = time.monotonic()
        _started(windows[fast.pk], operator)
        fast_run = wait_until(
            lambda: ProcedureRun.objects.filter(
                change=changes[fast.pk], status=ProcedureRun.Status.SUCCEEDED
            ).first(),
            timeout=60,
            what="target B's VACUUM to finish",
        )
        waited = time.monotonic() - started
        slow_run = ProcedureRun.objects.get(change=changes[slow.pk])

        assert slow_run.status == ProcedureRun.Status.RUNNING  # A is still vacuuming
        assert fast_run.started_at is not None
        assert waited < 15, f"target B's procedure waited {waited:.1f} s behind target A's"
        assert (fast_run.started_at - windows[fast.pk].execution.started_at).total_seconds() < 5
    finally:
        queue_workers.stop_all()
        with pg_server.connect("postgres") as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(other))
            )
