"""VACUUM / ANALYZE / REINDEX / UPGRADE on a real PostgreSQL target, inside approved,
scheduled changes in open windows, with every check and step recorded."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from psycopg import sql

from changes.models import State
from dbops.procedures.common import ADVISORY_BASE
from maintenance import runner
from maintenance.models import ProcedureRun
from maintenance.services import execution_advance, window_start
from portal.errors import Invalid
from tests.factories import ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    schedule_all,
    wait_until,
    window_opening_soon,
    with_procedure,
)

pytestmark = pytest.mark.django_db(transaction=True)
ODD = 'Odd "Claims" Table'


def _bloat(target_db, table: str = "claims", rows: int = 20_000, schema: str = "public"):
    name = sql.Identifier(schema, table)
    with target_db.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id int PRIMARY KEY, status text, amount int) "
                "WITH (autovacuum_enabled = false)"
            ).format(name)
        )
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT g, 'new', g FROM generate_series(1, %s) g").format(name),
            [rows],
        )
        conn.execute(sql.SQL("UPDATE {} SET status = 'paid'").format(name))
        conn.execute(sql.SQL("DELETE FROM {} WHERE id % 3 = 0").format(name))
        conn.execute("SELECT pg_stat_force_next_flush()")


def _dead(target_db, table: str, schema: str = "public") -> int:
    with target_db.connect() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
            [schema, table],
        ).fetchone()
        return row[0]


def _change_with(requester, operator, tenant, kind: str, **params):
    change = approved_change(
        requester, tenant, ComponentFactory(name="claims-db"), title=f"{kind} claims tables"
    )
    # Database procedures are added by a database operator: the target rule of its pages.
    return with_procedure(change, operator, kind, **params)


def _run_synchronously(change, operator) -> ProcedureRun:
    """The framework's own services and runner, called in this thread (no broker)."""
    window = window_opening_soon(seconds=1)
    schedule_all([change], window, operator)
    wait_until(lambda: window.is_open(), timeout=5, what="the window to open")
    execution = window_start(window=window, by=operator)
    execution_advance(execution_id=execution.pk)
    run = ProcedureRun.objects.get(change=change)
    runner.execute_run(run_id=run.pk)
    run.refresh_from_db()
    return run


@pytest.fixture(autouse=True)
def _calendar(db):
    calm_calendar()


def _quoted(name: str, schema: str = "public") -> str:
    def q(part: str) -> str:
        return (
            part if part.isidentifier() and part.islower() else '"' + part.replace('"', '""') + '"'
        )

    return f"{q(schema)}.{q(name)}"


@pytest.mark.worker
def test_vacuum_runs_in_an_approved_scheduled_change_and_removes_dead_tuples(
    celery_worker, client, target_db, make_target, requester, operator, tenant
):
    _bloat(target_db)
    before = _dead(target_db, "claims")
    assert before > 10_000
    target = make_target()
    change = _change_with(
        requester,
        operator,
        tenant,
        "db_vacuum",
        target=str(target.pk),
        tables=[_quoted("claims")],
        analyze="on",
    )
    window = window_opening_soon(seconds=2)
    schedule_all([change], window, operator)
    wait_until(lambda: window.is_open(), timeout=10, what="the window to open")
    window_start(window=window, by=operator)

    run = wait_until(
        lambda: ProcedureRun.objects.filter(
            change=change, status__in=["SUCCEEDED", "FAILED"]
        ).first(),
        timeout=90,
        what="the VACUUM run to finish",
    )
    assert run.status == "SUCCEEDED", run.error
    steps = list(run.steps.order_by("position").values_list("kind", "name", "status"))
    assert [s[1] for s in steps] == [
        "Per-target lock",
        "DISK_SPACE",
        "CONNECTIONS",
        "LOCKS",
        "Record the statistics before",
        "Notify stakeholders",
        "VACUUM each table",
        "Statistics show the tables vacuumed",
    ]
    assert {s[2] for s in steps} == {"SUCCEEDED"}
    checks = {s.name: s.result for s in run.steps.filter(kind="PRECHECK")}
    assert checks["CONNECTIONS"]["passed"] and "%" in checks["CONNECTIONS"]["value"]
    comparison = run.steps.get(kind="VERIFY").result["comparison"]
    assert comparison[0]["dead_before"] == before
    assert comparison[0]["dead_after"] < before
    assert _dead(target_db, "claims") < before
    client.force_login(operator)
    page = client.get(reverse("maintenance:run", args=[run.pk])).content.decode()
    assert 'data-testid="run-figures"' in page and "public.claims" in page
    assert "Dead tuples before" in page
    assert "threshold" in page  # each pre-check shows its measured value and threshold
    wait_until(
        lambda: type(change).objects.get(pk=change.pk).state == State.COMPLETED,
        timeout=30,
        what="the change to complete",
    )


def test_reindex_concurrently_leaves_valid_indexes(
    target_db, make_target, requester, operator, tenant
):
    _bloat(target_db)
    target_db.run("CREATE INDEX claims_status ON claims (status)")
    target = make_target()
    change = _change_with(
        requester,
        operator,
        tenant,
        "db_reindex",
        target=str(target.pk),
        tables=[_quoted("claims")],
        concurrently="on",
    )
    run = _run_synchronously(change, operator)
    assert run.status == "SUCCEEDED", run.error
    assert "REINDEX TABLE CONCURRENTLY" in run.steps.get(name="REINDEX each table").output
    assert run.steps.get(kind="VERIFY").result == {"indexes": 2, "invalid": 0}
    indexes = run.result["indexes_after"]
    assert {i["index_name"] for i in indexes} == {"claims_pkey", "claims_status"}
    assert all(i["valid"] for i in indexes)


def test_upgrade_records_the_versions_before_and_after(
    target_db, make_target, requester, operator, tenant
):
    target_db.run("CREATE EXTENSION pg_trgm VERSION '1.4'")
    target = make_target()
    change = _change_with(
        requester,
        operator,
        tenant,
        "db_upgrade",
        target=str(target.pk),
        extension="pg_trgm",
        version="1.6",
    )
    run = _run_synchronously(change, operator)
    assert run.status == "SUCCEEDED", run.error
    assert run.result["version_before"] == "1.4"
    assert run.result["version_after"] == "1.6"
    with target_db.connect() as conn:
        assert (
            conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'pg_trgm'"
            ).fetchone()[0]
            == "1.6"
        )


def test_an_odd_table_name_is_vacuumed_and_nothing_else_is_touched(
    target_db, make_target, requester, operator, tenant
):
    _bloat(target_db, table=ODD)
    _bloat(target_db, table="claims", schema="archive")  # same name, another schema
    _bloat(target_db, table="claims")
    target = make_target()
    change = _change_with(
        requester, operator, tenant, "db_vacuum", target=str(target.pk), tables=[_quoted(ODD)]
    )
    run = _run_synchronously(change, operator)
    assert run.status == "SUCCEEDED", run.error
    assert (
        'VACUUM "public"."Odd ""Claims"" Table"' in run.steps.get(name="VACUUM each table").output
    )
    with target_db.connect() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        vacuumed = dict(
            conn.execute(
                "SELECT schemaname || '.' || relname, last_vacuum IS NOT NULL "
                "FROM pg_stat_user_tables"
            ).fetchall()
        )
    assert vacuumed == {f"public.{ODD}": True, "public.claims": False, "archive.claims": False}


@pytest.mark.parametrize(
    "bad", ["x; DROP TABLE y", "public.nope", '"public"."claims"; --', "archive.claims"]
)
def test_unknown_or_unselected_tables_are_refused(
    target_db, make_target, requester, operator, tenant, bad
):
    from maintenance.services import change_procedure_add
    from tests.factories import ChangeRequestFactory

    _bloat(target_db)
    target_db.run("CREATE SCHEMA archive")
    target = make_target()
    change = ChangeRequestFactory(requester=requester, tenants=[tenant])
    with pytest.raises(Invalid, match=r"valid choice|catalog"):
        change_procedure_add(
            change=change,
            by=operator,
            kind="db_vacuum",
            params={"target": str(target.pk), "tables": [bad]},
        )
    assert not change.procedures.exists()
    with target_db.connect() as conn:
        assert conn.execute("SELECT to_regclass('public.claims') IS NOT NULL").fetchone()[0]


def test_a_stored_table_that_left_the_catalog_is_refused_at_run_time(
    target_db, make_target, requester, operator, tenant
):
    _bloat(target_db)
    target = make_target()
    change = _change_with(
        requester, operator, tenant, "db_vacuum", target=str(target.pk), tables=[_quoted("claims")]
    )
    target_db.run("DROP TABLE claims")
    run = _run_synchronously(change, operator)
    assert run.status == "FAILED"
    assert "Not in the target's catalog" in run.error
    assert not run.steps.filter(kind="STEP").exists()


def test_the_locks_check_fails_while_another_session_holds_access_exclusive(
    target_db, make_target, requester, operator, tenant
):
    _bloat(target_db)
    target = make_target()
    change = _change_with(
        requester, operator, tenant, "db_vacuum", target=str(target.pk), tables=[_quoted("claims")]
    )
    holder = target_db.connect()
    try:
        holder.autocommit = False
        holder.execute("LOCK TABLE claims IN ACCESS EXCLUSIVE MODE")
        run = _run_synchronously(change, operator)
    finally:
        holder.rollback()
        holder.close()
    assert run.status == "FAILED"
    locks = run.steps.get(name="LOCKS")
    assert locks.status == "FAILED"
    assert "AccessExclusiveLock" in str(locks.result["value"])
    assert not run.steps.filter(kind="STEP").exists()  # nothing executed


def test_the_connections_check_fails_over_its_threshold(
    target_db, make_target, requester, operator, tenant
):
    _bloat(target_db)
    target = make_target(connections_threshold_percent=1)
    change = _change_with(
        requester, operator, tenant, "db_analyze", target=str(target.pk), tables=[_quoted("claims")]
    )
    run = _run_synchronously(change, operator)
    assert run.status == "FAILED"
    check = run.steps.get(name="CONNECTIONS")
    assert check.result["threshold"] == "< 1%" and not check.result["passed"]


def test_the_disk_space_check_fails_when_the_configured_capacity_is_too_small(
    target_db, make_target, requester, operator, tenant
):
    _bloat(target_db)
    # A maintenance role that cannot read data_directory: free space comes from the
    # capacity configured on the target.
    role = f"maint_{target_db.name[-8:]}"
    target_db.run(f'CREATE ROLE "{role}" LOGIN', f'ALTER TABLE claims OWNER TO "{role}"')
    try:
        target = make_target(user=role, disk_capacity_bytes=1)
        change = _change_with(
            requester,
            operator,
            tenant,
            "db_vacuum",
            target=str(target.pk),
            tables=[_quoted("claims")],
            full="on",
        )
        run = _run_synchronously(change, operator)
        assert run.status == "FAILED"
        disk = run.steps.get(name="DISK_SPACE")
        assert disk.status == "FAILED"
        assert "configured capacity" in disk.result["value"]
    finally:
        target_db.run("ALTER TABLE claims OWNER TO postgres")
        with target_db.server.connect("postgres") as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_second_run_on_the_same_target_is_refused(
    target_db, make_target, requester, operator, tenant
):
    _bloat(target_db)
    target = make_target()
    change = _change_with(
        requester, operator, tenant, "db_vacuum", target=str(target.pk), tables=[_quoted("claims")]
    )
    other = target_db.connect()
    try:
        # Another maintenance run holds this target's advisory lock.
        other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_BASE + target.pk])
        run = _run_synchronously(change, operator)
    finally:
        other.close()
    assert run.status == "FAILED"
    assert "Another maintenance run is already working on" in run.error
    assert not run.steps.filter(kind="STEP").exists()


def test_an_unreachable_target_fails_at_the_pre_check_with_nothing_executed(
    target_db, make_target, requester, operator, tenant
):
    _bloat(target_db)
    target = make_target()
    change = _change_with(
        requester, operator, tenant, "db_analyze", target=str(target.pk), tables=[_quoted("claims")]
    )
    type(target).objects.filter(pk=target.pk).update(port=1)
    started = time.monotonic()
    run = _run_synchronously(change, operator)
    assert time.monotonic() - started < 30
    assert run.status == "FAILED"
    assert "Nothing accepts connections" in run.error
    assert not run.steps.filter(kind="STEP").exists()


def test_lock_timeouts_are_retried_then_the_table_is_skipped(
    target_db, make_target, requester, operator, tenant, monkeypatch
):
    from dbops.procedures import common as procedures

    _bloat(target_db)
    _bloat(target_db, table="payments")
    target = make_target()
    change = _change_with(
        requester,
        operator,
        tenant,
        "db_vacuum",
        target=str(target.pk),
        tables=[_quoted("claims"), _quoted("payments")],
    )
    monkeypatch.setattr(procedures, "LOCK_RETRIES", (0.1,))
    monkeypatch.setattr(procedures, "LOCK_TIMEOUT", "200ms")
    holder = target_db.connect()
    window = window_opening_soon(seconds=1)
    schedule_all([change], window, operator)
    wait_until(lambda: window.is_open(), timeout=5, what="the window to open")
    execution = window_start(window=window, by=operator)
    execution_advance(execution_id=execution.pk)
    run = ProcedureRun.objects.get(change=change)
    try:
        # Taken after the pre-checks would see it: lock the table just before the run
        # reaches it, by holding it from the start in a way LOCKS does not flag
        # (SHARE UPDATE EXCLUSIVE conflicts with VACUUM but is not ACCESS EXCLUSIVE).
        holder.autocommit = False
        holder.execute("LOCK TABLE payments IN SHARE UPDATE EXCLUSIVE MODE")
        runner.execute_run(run_id=run.pk)
    finally:
        holder.rollback()
        holder.close()
    run.refresh_from_db()
    step = run.steps.get(name="VACUUM each table")
    assert step.result == {"done": ["public.claims"], "skipped": ["public.payments"]}
    assert "retrying" in step.output and "skipped public.payments" in step.output
