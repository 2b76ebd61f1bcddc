"""Statistics snapshots of a target: pg_stat_statements and table statistics, daily
and at proposals, kept for trends and before/after comparisons."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from django.utils import timezone

from dbops import stats
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget, QueryStatsSnapshot, StatementStat, TableStat
from portal.audit import audit_record
from portal.models import AuditEvent
from portal.transactions import service


@service
def store_snapshot(
    target: DatabaseTarget, data: stats.SnapshotData, trigger: str
) -> QueryStatsSnapshot:
    snapshot = QueryStatsSnapshot.objects.create(
        target=target,
        taken_at=data.taken_at,
        trigger=trigger,
        statements_available=data.statements_available,
        stats_reset=data.stats_reset,
        connections_used=data.connections_used,
        error=data.error,
    )
    StatementStat.objects.bulk_create(
        StatementStat(
            snapshot=snapshot,
            queryid=st.queryid,
            query=st.query,
            calls=st.calls,
            total_exec_time=st.total_exec_time,
            mean_exec_time=st.mean_exec_time,
            rows=st.rows,
        )
        for st in data.statements
    )
    TableStat.objects.bulk_create(
        TableStat(
            snapshot=snapshot,
            schema=t["schema"],
            name=t["name"],
            n_live_tup=t["n_live_tup"] or 0,
            n_dead_tup=t["n_dead_tup"] or 0,
            seq_scan=t["seq_scan"] or 0,
            seq_tup_read=t["seq_tup_read"] or 0,
            idx_scan=t["idx_scan"],
            total_bytes=t["total_bytes"] or 0,
            last_vacuum=t["last_vacuum"],
            last_autovacuum=t["last_autovacuum"],
            last_analyze=t["last_analyze"],
            last_autoanalyze=t["last_autoanalyze"],
        )
        for t in data.tables
    )
    return snapshot


@service(atomic=False)
def stats_snapshot_take(
    *, target: DatabaseTarget, trigger: str = QueryStatsSnapshot.Trigger.SCHEDULED, by=None
) -> QueryStatsSnapshot:
    """Stores pg_stat_statements and table statistics of a target. An unreachable target
    still gets a snapshot row, carrying the reason, so gaps in a trend are explained."""
    try:
        with connect(target) as conn:
            data = stats.read_snapshot(conn)
    except TargetUnavailable as exc:
        data = stats.SnapshotData(taken_at=timezone.now(), error=exc.message)
    except psycopg.Error as exc:
        data = stats.SnapshotData(taken_at=timezone.now(), error=query_failure(exc))
    return _snapshot_store(target=target, data=data, trigger=trigger, by=by)


@service
def _snapshot_store(*, target, data: stats.SnapshotData, trigger: str, by) -> QueryStatsSnapshot:
    snapshot = store_snapshot(target=target, data=data, trigger=trigger)
    audit_record(
        action="dbops.stats.snapshot",
        user=by,
        username="" if by else "celery-beat",
        object_type="dbops.databasetarget",
        object_id=target.pk,
        outcome=AuditEvent.Outcome.FAILURE if data.error else AuditEvent.Outcome.SUCCESS,
        details={
            "snapshot": snapshot.pk,
            "trigger": trigger,
            "statements": len(data.statements),
            "tables": len(data.tables),
            "error": data.error,
        },
    )
    return snapshot


@service(atomic=False)
def stats_snapshots_take(*, target_ids: Iterable[int] | None = None) -> list[int]:
    """The daily snapshot of each (given, else each active) target; the ids stored."""
    targets = DatabaseTarget.objects.all()
    targets = (
        targets.filter(pk__in=list(target_ids)) if target_ids else targets.filter(is_active=True)
    )
    return [stats_snapshot_take(target=t).pk for t in targets.order_by("pk")]
