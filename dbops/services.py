"""Every write of the dbops app: permission check, row lock, save and audit row in one
durable transaction. Reads from a target happen before that transaction opens, so no
portal row stays locked while a remote server is slow to answer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import psycopg
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from changes.models import ChangeRequest, ChangeType, Priority
from changes.services import change_create
from dbops import access, analysis, sqlfiles, stats
from dbops.advisor.ddl import candidate_sql
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.errors import Invalid, NotAllowed
from dbops.models import (
    DatabaseTarget,
    IndexSuggestion,
    QueryStatsSnapshot,
    StatementStat,
    TableStat,
)
from portal.audit import audit_record
from portal.models import AuditEvent, Component, Tenant
from portal.permissions import visible_tenants
from portal.roles import Role, has_role

TARGET_FIELDS = (
    "name",
    "host",
    "port",
    "database",
    "user",
    "sslmode",
    "disk_capacity_bytes",
    "connections_threshold_percent",
    "is_active",
    "memory_bytes",
    "cpu_count",
    "storage_type",
    "expected_concurrent_users",
    "restartable",
    "restart_command",
)
PROPOSAL_WINDOW_MINUTES = 60
PROPOSAL_LEAD = timedelta(days=2)


def _role_used(user) -> str:
    for role in (Role.OPERATIONS, Role.ENGINEERING):
        if has_role(user, role):
            return role
    return ""


def _validate(target: DatabaseTarget) -> None:
    try:
        target.full_clean(exclude=["component"])
    except ValidationError as exc:
        raise Invalid("; ".join(exc.messages)) from None


def _target_details(target: DatabaseTarget) -> dict[str, Any]:
    """What the audit trail says about a target: never the password, only whether one
    is stored."""
    return {
        "name": target.name,
        "host": target.host,
        "port": target.port,
        "database": target.database,
        "user": target.user,
        "sslmode": target.sslmode,
        "password_stored": target.has_password,
        "component": target.component.name,
    }


def _check_visible(by, target: DatabaseTarget) -> None:
    if not access.targets_visible_to(by).filter(pk=target.pk).exists():
        raise NotAllowed("You may not use this database target.")


# --- targets ------------------------------------------------------------------------------


def _component_for(name: str, component: Component | None) -> Component:
    if component is not None:
        if component.kind != Component.Kind.DATABASE:
            raise Invalid(f"“{component.name}” is not a database component.")
        if DatabaseTarget.objects.filter(component=component).exists():
            raise Invalid(f"“{component.name}” already belongs to another database target.")
        return component
    component_name = f"{name} (PostgreSQL)"
    existing = Component.objects.filter(name=component_name).first()
    if existing is None:
        return Component.objects.create(
            name=component_name,
            kind=Component.Kind.DATABASE,
            description=f"PostgreSQL database registered as target “{name}”.",
        )
    if (
        existing.kind == Component.Kind.DATABASE
        and not DatabaseTarget.objects.filter(component=existing).exists()
    ):
        return existing
    raise Invalid(
        f"A component named “{component_name}” already exists; choose it explicitly or "
        "give the target another name."
    )


def database_target_create(
    *,
    by,
    data: dict[str, Any],
    password: str,
    tenants: Iterable[Tenant],
    component: Component | None = None,
) -> DatabaseTarget:
    if not access.can_manage_targets(by):
        raise NotAllowed("Only portal administrators may register database targets.")
    with transaction.atomic(durable=True):
        target = DatabaseTarget(**{k: data[k] for k in TARGET_FIELDS if k in data})
        _validate(target)
        target.component = _component_for(target.name, component)
        target.set_password(password)
        target.save()
        target.tenants.set(tenants)
        audit_record(
            action="dbops.target.created",
            user=by,
            obj=target,
            details={
                **_target_details(target),
                "tenants": sorted(t.slug for t in target.tenants.all()),
            },
        )
    return target


def database_target_update(
    *,
    target: DatabaseTarget,
    by,
    data: dict[str, Any],
    password: str | None,
    tenants: Iterable[Tenant],
    clear_password: bool = False,
) -> DatabaseTarget:
    """``password`` None keeps the stored one (the form never shows it back)."""
    if not access.can_manage_targets(by):
        raise NotAllowed("Only portal administrators may change database targets.")
    tenants = list(tenants)
    with transaction.atomic(durable=True):
        locked = DatabaseTarget.objects.select_for_update().get(pk=target.pk)
        changed = [k for k in TARGET_FIELDS if k in data and getattr(locked, k) != data[k]]
        for key in changed:
            setattr(locked, key, data[key])
        if password:
            locked.set_password(password)
            changed.append("password")
        elif clear_password and locked.has_password:
            locked.set_password("")
            changed.append("password")
        _validate(locked)
        locked.save()
        before = set(locked.tenants.values_list("pk", flat=True))
        if before != {t.pk for t in tenants}:
            locked.tenants.set(tenants)
            changed.append("tenants")
        audit_record(
            action="dbops.target.updated",
            user=by,
            obj=locked,
            details={"fields": changed, "password_stored": locked.has_password},
        )
    return locked


def database_target_delete(*, target: DatabaseTarget, by) -> None:
    """Removes the target and its snapshots; its catalog component stays, since changes
    may name it. A target with proposed index changes is kept as their evidence."""
    if not access.can_manage_targets(by):
        raise NotAllowed("Only portal administrators may remove database targets.")
    with transaction.atomic(durable=True):
        locked = (
            DatabaseTarget.objects.select_for_update().select_related("component").get(pk=target.pk)
        )
        if locked.index_suggestions.exists():
            raise Invalid(
                f"Changes were proposed for “{locked.name}”; deactivate it instead of removing it."
            )
        audit_record(
            action="dbops.target.deleted", user=by, obj=locked, details=_target_details(locked)
        )
        locked.delete()


def database_target_check(*, target: DatabaseTarget, by) -> dict[str, Any]:
    """ "Test connection": version, pg_stat_statements and missing privileges, stored on
    the target and audited (a failure too, with its reason)."""
    if not access.is_database_operator(by):
        raise NotAllowed("Your roles do not allow database operations.")
    _check_visible(by, target)
    try:
        with connect(target) as conn:
            report = stats.connection_report(conn)
    except TargetUnavailable as exc:
        report = {"ok": False, "error": exc.message}
    except psycopg.Error as exc:
        report = {"ok": False, "error": f"Connected, but a check failed: {query_failure(exc)}"}
    now = timezone.now()
    report["checked_at"] = now.isoformat()
    with transaction.atomic(durable=True):
        locked = DatabaseTarget.objects.select_for_update().get(pk=target.pk)
        locked.last_checked_at = now
        locked.last_check = report
        locked.save(update_fields=["last_checked_at", "last_check", "updated_at"])
        audit_record(
            action="dbops.target.checked",
            user=by,
            role=_role_used(by),
            obj=locked,
            outcome=AuditEvent.Outcome.SUCCESS if report["ok"] else AuditEvent.Outcome.FAILURE,
            details={
                "server_version": report.get("server_version"),
                "statements": (report.get("statements") or {}).get("state"),
                "missing": report.get("missing", []),
                "error": report.get("error", ""),
            },
        )
    return report


# --- statistics snapshots -------------------------------------------------------------------


@dataclass
class _SnapshotData:
    taken_at: datetime
    statements_available: bool = False
    stats_reset: datetime | None = None
    statements: list[analysis.Statement] = field(default_factory=list)
    tables: list[dict] = field(default_factory=list)
    connections_used: int | None = None
    error: str = ""


def _read_snapshot(conn: psycopg.Connection) -> _SnapshotData:
    data = _SnapshotData(taken_at=timezone.now())
    status = stats.statements_status(conn)
    if status.available:
        data.statements_available = True
        data.statements = stats.statements_for_snapshot(conn, status)
        data.stats_reset = stats.statements_reset_at(conn, status)
    data.tables = stats.tables_for_snapshot(conn)
    data.connections_used = conn.execute(sqlfiles.load("proc_connections")).fetchone()[0]
    return data


def _store_snapshot(
    target: DatabaseTarget, data: _SnapshotData, trigger: str
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


def stats_snapshot_take(
    *, target: DatabaseTarget, trigger: str = QueryStatsSnapshot.Trigger.SCHEDULED, by=None
) -> QueryStatsSnapshot:
    """Stores pg_stat_statements and table statistics of a target. An unreachable target
    still gets a snapshot row, carrying the reason, so gaps in a trend are explained."""
    try:
        with connect(target) as conn:
            data = _read_snapshot(conn)
    except TargetUnavailable as exc:
        data = _SnapshotData(taken_at=timezone.now(), error=exc.message)
    except psycopg.Error as exc:
        data = _SnapshotData(taken_at=timezone.now(), error=query_failure(exc))
    with transaction.atomic(durable=True):
        snapshot = _store_snapshot(target, data, trigger)
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


def stats_snapshots_take(*, target_ids: Iterable[int] | None = None) -> list[int]:
    """The daily snapshot of each (given, else each active) target; the ids stored."""
    targets = DatabaseTarget.objects.all()
    targets = (
        targets.filter(pk__in=list(target_ids)) if target_ids else targets.filter(is_active=True)
    )
    return [stats_snapshot_take(target=t).pk for t in targets.order_by("pk")]


# --- index proposals ------------------------------------------------------------------------


def _next_routine_slot(now: datetime) -> datetime:
    """The first Sunday 01:00 UTC (the routine window) at least PROPOSAL_LEAD ahead."""
    earliest = (now + PROPOSAL_LEAD).astimezone(UTC)
    day = earliest.date()
    while True:
        start = datetime.combine(day, time(1, 0), tzinfo=UTC)
        if day.weekday() == 6 and start >= earliest:
            return start
        day += timedelta(days=1)


def _proposal_tenants(target: DatabaseTarget, by) -> list[Tenant]:
    """The target's tenants the proposer may see; for a shared database (no tenants
    named) the first tenant the proposer may see, to be corrected on the draft."""
    visible = visible_tenants(by)
    named = list(target.tenants.filter(pk__in=visible.values("pk")).order_by("name"))
    if named:
        return named
    first = visible.order_by("name").first()
    if first is None:
        raise Invalid("You may see no tenant, so a change naming one cannot be filed.")
    return [first]


def _free_index_name(conn: psycopg.Connection, suggestion: analysis.Suggestion) -> str:
    for n in range(1, 100):
        parts = suggestion.index_parts if n == 1 else [*suggestion.index_parts, str(n)]
        name = analysis.index_name(suggestion.table, parts)
        if not stats.relation_exists(conn, suggestion.schema, name):
            return name
    raise Invalid(f"Could not find a free name for an index on {suggestion.label}.")


def _proof_text(suggestion: analysis.Suggestion) -> str:
    proof = suggestion.proof
    if proof.status == "proven":
        return (
            f"HypoPG: the planner uses the hypothetical index and the estimated cost falls "
            f"from {proof.cost_before:,.1f} to {proof.cost_after:,.1f} "
            f"({proof.cut_percent:.0f} % less)."
        )
    return proof.reason or "Unverified."


def _proposal_text(
    target: DatabaseTarget,
    suggestion: analysis.Suggestion,
    current: analysis.Statement,
    *,
    index: str,
    create_sql: str,
    drop_sql: str,
) -> dict[str, str]:
    qualified = f"{suggestion.schema}.{suggestion.table}"
    description = (
        f"Statement {current.queryid} on database target “{target.name}” averages "
        f"{current.mean_exec_time:.1f} ms over {current.calls} calls:\n\n{current.query}\n\n"
        f"{suggestion.why} Columns are ordered by selectivity (pg_stats). "
        f"{_proof_text(suggestion)} "
        "Proposed from the query-performance page; the statement's statistics at the time "
        "are stored with this proposal as the baseline."
    )
    implementation = (
        f"On database target “{target.name}” ({target.address}), in an autocommit session "
        "(CREATE INDEX CONCURRENTLY refuses to run inside a transaction block):\n\n"
        f"{create_sql};\n\n"
        f"Then confirm the new index {index} on {qualified} is valid "
        "(pg_index.indisvalid) before closing the session."
    )
    backout = (
        f"{drop_sql};\n\nAlso removes an invalid index left behind by a failed concurrent build."
    )
    verification = (
        f"Compare the mean execution time of statement {current.queryid} in "
        "pg_stat_statements before and after the index exists. Before: "
        f"{current.mean_exec_time:.1f} ms mean over {current.calls} calls "
        f"({current.total_exec_time:.1f} ms in total), stored as the baseline snapshot. "
        "After the statement has run again, take a new snapshot and compute the mean over "
        "the calls since the baseline ((total after - total before) / (calls after - calls "
        f"before)); expect it to be lower, and pg_stat_user_indexes.idx_scan of {index} to "
        "grow. A pg_stat_statements reset in between voids the comparison."
    )
    return {
        "title": f"Add index on {suggestion.label}"[:200],
        "description": description,
        "implementation_plan": implementation,
        "backout_plan": backout,
        "verification_plan": verification,
    }


def index_suggestion_propose(
    *, target: DatabaseTarget, suggestion: analysis.Suggestion, by, now: datetime | None = None
) -> ChangeRequest:
    """Turn an index suggestion into a PERFORMANCE change request draft, storing the
    statement's statistics as the baseline a later verification compares against.

    The draft is written by ``changes.services.change_create`` in its own durable
    transaction; the baseline and the suggestion follow in a second one.
    """
    if not access.is_database_operator(by):
        raise NotAllowed("Your roles do not allow database operations.")
    _check_visible(by, target)
    now = now or timezone.now()
    try:
        with connect(target) as conn:
            status = stats.statements_status(conn)
            if not status.available:
                raise Invalid(f"pg_stat_statements is not available on “{target.name}”.")
            current = stats.statement(conn, status, suggestion.queryid)
            if current is None:
                raise Invalid(
                    "The statement is no longer in pg_stat_statements; reload the query page."
                )
            index = _free_index_name(conn, suggestion)
            baseline = _read_snapshot(conn)
    except TargetUnavailable as exc:
        raise Invalid(exc.message) from None
    except psycopg.Error as exc:
        raise Invalid(f"Reading the target failed: {query_failure(exc)}") from None
    if all(st.queryid != current.queryid for st in baseline.statements):
        baseline.statements.append(current)
    create_sql = candidate_sql(suggestion.candidate, name=index).as_string()
    drop_sql = analysis.drop_index_sql(suggestion.schema, index).as_string()
    text = _proposal_text(
        target, suggestion, current, index=index, create_sql=create_sql, drop_sql=drop_sql
    )
    change = change_create(
        by=by,
        data={
            **text,
            "type": ChangeType.PERFORMANCE,
            "priority": Priority.LOW,
            "proposed_start": _next_routine_slot(now),
            "window_minutes": PROPOSAL_WINDOW_MINUTES,
            "blackout_exception": False,
        },
        components=[target.component],
        services=[],
        tenants=_proposal_tenants(target, by),
    )
    with transaction.atomic(durable=True):
        snapshot = _store_snapshot(target, baseline, QueryStatsSnapshot.Trigger.PROPOSAL)
        record = IndexSuggestion.objects.create(
            target=target,
            change=change,
            schema=suggestion.schema,
            table=suggestion.table,
            columns=list(suggestion.columns),
            method=suggestion.method,
            keys=[k.to_json() for k in suggestion.candidate.keys],
            predicate=(
                suggestion.candidate.predicate.to_json() if suggestion.candidate.predicate else None
            ),
            proof=suggestion.proof.status,
            proof_reason=suggestion.proof.reason,
            estimated_cost_before=suggestion.proof.cost_before,
            estimated_cost_after=suggestion.proof.cost_after,
            index_name=index,
            create_sql=create_sql,
            drop_sql=drop_sql,
            queryid=current.queryid,
            query=current.query,
            baseline=snapshot,
            mean_exec_time_before=current.mean_exec_time,
            calls_before=current.calls,
            proposed_by=by,
        )
        audit_record(
            action="dbops.index.proposed",
            user=by,
            role=_role_used(by),
            obj=change,
            details={
                "target": target.name,
                "suggestion": record.pk,
                "index": index,
                "create_sql": create_sql,
                "queryid": current.queryid,
                "mean_exec_time_before": round(current.mean_exec_time, 3),
                "proof": suggestion.proof.status,
                "estimated_cost_before": suggestion.proof.cost_before,
                "estimated_cost_after": suggestion.proof.cost_after,
                "baseline_snapshot": snapshot.pk,
            },
        )
    # The change carries the procedure that builds the index inside its window.
    from maintenance.services import change_procedure_add

    change_procedure_add(
        change=change, by=by, kind="db_create_index", params={"suggestion": record.pk}
    )
    return change


def index_suggestion_verify(*, suggestion: IndexSuggestion, by=None) -> IndexSuggestion:
    """Measure the statement's mean time over the calls made since the baseline and
    record the improvement on the suggestion and, in the audit trail, on the change."""
    from dbops.procedures import measure_improvement

    if by is not None and not access.is_database_operator(by):
        raise NotAllowed("Your roles do not allow database operations.")
    try:
        result = measure_improvement(suggestion)
    except TargetUnavailable as exc:
        raise Invalid(exc.message) from None
    if result["status"] != "measured":
        raise Invalid(
            "No new calls of the statement since the baseline yet; measure again once the "
            "application has run it."
        )
    with transaction.atomic(durable=True):
        locked = IndexSuggestion.objects.select_for_update().get(pk=suggestion.pk)
        locked.mean_exec_time_after = result["mean_after_ms"]
        locked.calls_after = result["calls_now"]
        locked.verified_at = timezone.now()
        locked.save(update_fields=["mean_exec_time_after", "calls_after", "verified_at"])
        audit_record(
            action="dbops.index.verified",
            user=by,
            obj=locked.change,
            details={
                key: result[key]
                for key in ("mean_before_ms", "mean_after_ms", "new_calls", "improvement_percent")
            },
        )
    return locked
