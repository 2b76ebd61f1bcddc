"""Index proposals: a suggestion from the query page becomes a PERFORMANCE change
request carrying its CREATE INDEX CONCURRENTLY procedure and a baseline snapshot, in
one transaction; after the build, the statement's new mean time is recorded."""

from __future__ import annotations

from datetime import datetime

import psycopg
from django.utils import timezone

from changes.access import filing_tenants
from changes.models import ChangeRequest, ChangeType, Priority
from changes.services import change_create
from dbops import analysis, stats
from dbops.advisor.ddl import candidate_sql
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget, IndexSuggestion, QueryStatsSnapshot
from dbops.services.common import check_visible, require_operator, role_used
from dbops.services.snapshots import store_snapshot
from maintenance.scheduling import next_routine_start
from maintenance.services import change_procedure_add
from portal.audit import audit_record
from portal.errors import Invalid
from portal.transactions import service

PROPOSAL_WINDOW_MINUTES = 60


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


@service(atomic=False)
def index_suggestion_propose(
    *, target: DatabaseTarget, suggestion: analysis.Suggestion, by, now: datetime | None = None
) -> ChangeRequest:
    """Turn an index suggestion into a PERFORMANCE change request draft, storing the
    statement's statistics as the baseline a later verification compares against.

    The target is read first, outside any transaction; then the draft, the baseline,
    the suggestion and the procedure are written as one transaction: a failure in any
    of them leaves nothing behind."""
    require_operator(by, action="dbops.index.propose_refused", obj=target)
    check_visible(by, target, action="dbops.index.propose_refused")
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
            baseline = stats.read_snapshot(conn)
    except TargetUnavailable as exc:
        raise Invalid(exc.message) from None
    except psycopg.Error as exc:
        raise Invalid(f"Reading the target failed: {query_failure(exc)}") from None
    if all(st.queryid != current.queryid for st in baseline.statements):
        baseline.statements.append(current)
    return _propose_store(
        target=target,
        suggestion=suggestion,
        current=current,
        index=index,
        baseline=baseline,
        by=by,
        now=now,
    )


@service
def _propose_store(
    *,
    target: DatabaseTarget,
    suggestion: analysis.Suggestion,
    current: analysis.Statement,
    index: str,
    baseline: stats.SnapshotData,
    by,
    now: datetime,
) -> ChangeRequest:
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
            "proposed_start": next_routine_start(now),
            "window_minutes": PROPOSAL_WINDOW_MINUTES,
            "blackout_exception": False,
        },
        components=[target.component],
        services=[],
        tenants=filing_tenants(by, target.tenants.all()),
    )
    snapshot = store_snapshot(
        target=target, data=baseline, trigger=QueryStatsSnapshot.Trigger.PROPOSAL
    )
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
        role=role_used(by),
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
    change_procedure_add(
        change=change, by=by, kind="db_create_index", params={"suggestion": record.pk}
    )
    return change


@service(atomic=False)
def index_suggestion_verify(*, suggestion: IndexSuggestion, by=None) -> IndexSuggestion:
    """ "Measure again" from the change page: read the statement's mean time over the
    calls since the baseline, then record it."""
    if by is not None:
        require_operator(by, action="dbops.index.verify_refused", obj=suggestion.change)
    try:
        with connect(suggestion.target) as conn:
            result = stats.measure_improvement(suggestion, conn)
    except TargetUnavailable as exc:
        raise Invalid(exc.message) from None
    if result["status"] != "measured":
        raise Invalid(
            "No new calls of the statement since the baseline yet; measure again once the "
            "application has run it."
        )
    return index_suggestion_record(suggestion=suggestion, result=result, by=by)


@service
def index_suggestion_record(
    *, suggestion: IndexSuggestion, result: dict, by=None
) -> IndexSuggestion:
    """Record a measured improvement on the suggestion and, in the audit trail, on the
    change."""
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
