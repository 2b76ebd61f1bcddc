"""Explain on the query page: a statement's plan as a tree with its costly nodes marked.

EXPLAIN (without ANALYZE) only plans, so it is allowed for any one SELECT, INSERT, UPDATE
or DELETE. EXPLAIN ANALYZE runs the statement: only for a SELECT with no side effects
(decided on pglast's tree, and on the target's catalog for the functions it calls),
with its values (no $1), inside a READ ONLY transaction that is rolled back, under a
statement_timeout. Refusals and every ANALYZE run are audited, with the statement's
fingerprint rather than its text (a typed statement may hold patients' data)."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from django.db import transaction
from pglast import ast, parse_sql
from pglast.parser import ParseError
from psycopg import sql

from dbops import sqlfiles
from dbops.advisor import hypo
from dbops.advisor.parse import find, shape_of
from dbops.advisor.statements import query_fingerprint
from dbops.connections import TargetUnavailable, connect, query_failure
from portal.audit import audit_record
from portal.models import AuditEvent

ANALYZE_TIMEOUT_MS = 10_000
# A node whose own share of the plan's cost (or of its time, with ANALYZE) is at least
# this much is marked costly.
COSTLY_SHARE = 0.2
MAX_DEPTH = 40
# Volatile, yet without side effects.
HARMLESS_VOLATILE = frozenset({"random", "clock_timestamp", "timeofday", "gen_random_uuid"})
DETAIL_KEYS = (
    "Index Cond",
    "Recheck Cond",
    "Filter",
    "Hash Cond",
    "Merge Cond",
    "Join Filter",
    "Sort Key",
    "Group Key",
    "Rows Removed by Filter",
)


class ExplainRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class PlanNode:
    node_type: str
    relation: str = ""
    index: str = ""
    startup_cost: float = 0.0
    total_cost: float = 0.0
    rows: float = 0.0
    actual_time: float | None = None
    actual_rows: float | None = None
    loops: int | None = None
    details: list[tuple[str, str]] = field(default_factory=list)
    self_cost: float = 0.0
    self_time: float | None = None
    # Under a Gather, loops are parallel workers: their times overlap, not add up.
    parallel: bool = False
    share: float = 0.0
    costly: bool = False
    children: list[PlanNode] = field(default_factory=list)


@dataclass
class ExplainResult:
    root: PlanNode
    analyzed: bool
    total_cost: float
    planning_ms: float | None = None
    execution_ms: float | None = None
    generic: bool = False


def _node(data: dict, depth: int = 0, parallel: bool = False) -> PlanNode:
    node_type = data.get("Node Type", "?")
    if node_type == "ModifyTable" and data.get("Operation"):
        node_type = f"{data['Operation']} (ModifyTable)"
    node = PlanNode(
        node_type=node_type,
        relation=data.get("Relation Name", "") or data.get("CTE Name", ""),
        index=data.get("Index Name", ""),
        startup_cost=float(data.get("Startup Cost", 0.0)),
        total_cost=float(data.get("Total Cost", 0.0)),
        rows=float(data.get("Plan Rows", 0.0)),
        details=[(k, str(data[k])) for k in DETAIL_KEYS if k in data],
        parallel=parallel,
    )
    if "Actual Total Time" in data:
        node.loops = int(data.get("Actual Loops", 1))
        node.actual_time = float(data["Actual Total Time"])
        node.actual_rows = float(data.get("Actual Rows", 0.0))
    if depth < MAX_DEPTH:
        below = parallel or node_type in ("Gather", "Gather Merge")
        node.children = [_node(child, depth + 1, below) for child in data.get("Plans", [])]
    return node


def _spent(node: PlanNode) -> float:
    loops = 1 if node.parallel else (node.loops or 1)
    return (node.actual_time or 0.0) * loops


def _shares(node: PlanNode, total_cost: float, total_time: float | None) -> None:
    node.self_cost = max(node.total_cost - sum(c.total_cost for c in node.children), 0.0)
    if node.actual_time is not None:
        node.self_time = max(_spent(node) - sum(_spent(c) for c in node.children), 0.0)
    if total_time and node.self_time is not None:
        node.share = min(node.self_time / total_time, 1.0)
    elif total_cost > 0:
        node.share = min(node.self_cost / total_cost, 1.0)
    node.costly = node.share >= COSTLY_SHARE
    for child in node.children:
        _shares(child, total_cost, total_time)


def plan_tree(document: dict) -> ExplainResult:
    root = _node(document["Plan"])
    total_time = None
    if root.actual_time is not None:
        total_time = root.actual_time * (root.loops or 1)
    _shares(root, root.total_cost, total_time)
    return ExplainResult(
        root=root,
        analyzed=root.actual_time is not None,
        total_cost=root.total_cost,
        planning_ms=document.get("Planning Time"),
        execution_ms=document.get("Execution Time"),
    )


# --- what may be run -----------------------------------------------------------------------


def check_explainable(query: str) -> None:
    shape = shape_of(query)
    if shape.error == "Parse error":
        raise ExplainRefused("The statement does not parse.")
    if shape.error == "Several statements":
        raise ExplainRefused("Explain one statement at a time.")
    if shape.kind not in hypo.EXPLAINABLE_KINDS:
        raise ExplainRefused("Only a SELECT, INSERT, UPDATE or DELETE can be explained.")


def side_effects(query: str) -> tuple[str, list[str]]:
    """Why EXPLAIN ANALYZE may not run the statement ("" if it may), and the functions it
    calls (for the caller to check their volatility on the target)."""
    try:
        parsed = parse_sql(query)
    except ParseError:
        return "The statement does not parse.", []
    if len(parsed) != 1:
        return "Explain one statement at a time.", []
    stmt = parsed[0].stmt
    if not isinstance(stmt, ast.SelectStmt):
        return (
            "EXPLAIN ANALYZE runs the statement, so it is offered for SELECT only; "
            "this statement writes. Use Explain (plan only) instead.",
            [],
        )
    if stmt.intoClause is not None:
        return "SELECT … INTO creates a table: not run.", []
    if find(stmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt):
        return "The statement modifies data (in a WITH clause): not run.", []
    if find(stmt, ast.LockingClause):
        return "SELECT … FOR UPDATE/SHARE takes row locks: not run.", []
    if find(stmt, ast.ParamRef):
        return (
            "EXPLAIN ANALYZE needs the statement's values: replace $1, $2 … with real "
            "values first (Explain plans it without them).",
            [],
        )
    names = sorted({".".join(s.sval for s in f.funcname) for f in find(stmt, ast.FuncCall)})
    return "", names


def _volatile(conn: psycopg.Connection, names: list[str]) -> list[str]:
    """The called functions that may have side effects: volatile (and not harmless), or
    unknown to the target (so their volatility cannot be checked)."""
    if not names:
        return []
    plain = [n.rsplit(".", 1)[-1] for n in names]
    rows = conn.execute(
        f"{sqlfiles.MARKER} SELECT proname, bool_or(provolatile = 'v') FROM pg_proc "
        "WHERE proname = ANY(%s) GROUP BY proname",
        [plain],
    ).fetchall()
    known = {name: volatile for name, volatile in rows}
    return [n for n in plain if n not in HARMLESS_VOLATILE and (n not in known or known[n])]


# --- running ---------------------------------------------------------------------------------


def run_explain(conn: psycopg.Connection, query: str, *, analyze: bool) -> ExplainResult:
    if not analyze:
        check_explainable(query)
        generic = shape_of(query).params > 0
        plan = hypo.generic_plan(conn, query) if generic else hypo.explain(conn, query)
        result = plan_tree(plan.root)
        result.generic = generic
        return result
    reason, functions = side_effects(query)
    if reason:
        raise ExplainRefused(reason)
    risky = _volatile(conn, functions)
    if risky:
        raise ExplainRefused(
            f"The statement calls {', '.join(risky)}, which may have side effects "
            "(volatile): not run."
        )
    with conn.transaction(force_rollback=True):
        conn.execute(f"{sqlfiles.MARKER} SET TRANSACTION READ ONLY")
        conn.execute(
            sql.SQL("{} SET LOCAL statement_timeout = {}").format(
                sql.SQL(sqlfiles.MARKER), sql.Literal(f"{ANALYZE_TIMEOUT_MS}ms")
            )
        )
        plan = hypo.explain(conn, query, options="ANALYZE, BUFFERS, FORMAT JSON")
    return plan_tree(plan.root)


def statement_explain(*, target, by, query: str, analyze: bool, queryid: int | None = None):
    """Explains a statement on a target for a database operator (the caller checked they
    may see the target). Refusals and ANALYZE runs are audited."""
    details = {
        "target": target.name,
        "fingerprint": query_fingerprint(query) or "",
        "chars": len(query),
        "queryid": queryid,
        "analyze": analyze,
    }

    def refuse(message: str):
        with transaction.atomic():
            audit_record(
                action="dbops.explain.refused",
                user=by,
                obj=target,
                outcome=AuditEvent.Outcome.DENIED,
                details={**details, "reason": message},
            )
        raise ExplainRefused(message)

    try:
        with connect(target) as conn:
            try:
                result = run_explain(conn, query, analyze=analyze)
            except (ExplainRefused, hypo.ExplainFailed) as exc:
                refuse(exc.message)
            except psycopg.Error as exc:
                if conn.broken:
                    raise
                refuse(f"The server refused it: {query_failure(exc)}")
    except TargetUnavailable as exc:
        raise ExplainRefused(exc.message) from None
    except psycopg.Error as exc:
        raise ExplainRefused(f"Explaining failed: {query_failure(exc)}") from None
    if analyze:
        with transaction.atomic():
            audit_record(
                action="dbops.explain.analyzed",
                user=by,
                obj=target,
                details={**details, "execution_ms": result.execution_ms},
            )
    return result
