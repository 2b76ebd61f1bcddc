"""Proof before proposing: each candidate is created as a HypoPG hypothetical index (it
exists only in this session's planner) and the statement is EXPLAINed again. Only a
candidate the planner uses, and that cuts the estimated cost by the required share, is
proven.

Statements from pg_stat_statements carry $1, $2 … instead of their values. They are
planned as a prepared statement's generic plan (plan_cache_mode = force_generic_plan):
the planner's estimate for a representative value, not for one caller's. The statement
text is never spliced into SQL: it is prepared through the protocol (PQprepare) and only
``EXPLAIN EXECUTE <fixed name>`` is written by the portal."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import psycopg
from psycopg import pq, sql

from dbops import sqlfiles
from dbops.advisor.ddl import candidate_sql
from dbops.advisor.model import Candidate, Proof
from dbops.advisor.parse import shape_of

PREPARED_NAME = "change_portal_advisor"
_names = itertools.count(1)
SIMULATED_METHODS = frozenset({"btree", "hash", "brin"})
EXPLAINABLE_KINDS = frozenset({"select", "update", "delete", "insert"})


class ExplainFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Extensions:
    hypopg: bool = False
    hypopg_installed: bool = False
    hypopg_schema: str | None = None
    trigram: bool = False
    trigram_installed: bool = False


def extensions(conn: psycopg.Connection) -> Extensions:
    from dbops.stats import fetch

    rows = {r["name"]: r for r in fetch(conn, "advisor_extensions")}
    hypopg, trgm = rows.get("hypopg"), rows.get("pg_trgm")
    return Extensions(
        hypopg=bool(hypopg and hypopg["created"]),
        hypopg_installed=hypopg is not None,
        hypopg_schema=hypopg["schema"] if hypopg else None,
        trigram=bool(trgm and trgm["created"]),
        trigram_installed=trgm is not None,
    )


def _indexes(node) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "Index Name":
                    found.add(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


@dataclass(frozen=True)
class Plan:
    root: dict
    cost: float
    indexes: frozenset[str]


def _error(result: pq.PGresult) -> str:
    message = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
    return message.decode("utf-8", "replace") if message else "the server refused it"


def explain(conn: psycopg.Connection, query: str, *, options: str = "FORMAT JSON") -> Plan:
    """The statement's (generic) plan. ``options`` is one of the fixed lists below."""
    if options not in ("FORMAT JSON", "ANALYZE, BUFFERS, FORMAT JSON"):
        raise ValueError(f"Unknown EXPLAIN options: {options!r}")
    shape = shape_of(query)
    if shape.kind not in EXPLAINABLE_KINDS or shape.error == "Parse error":
        raise ExplainFailed("Only one SELECT, INSERT, UPDATE or DELETE can be explained.")
    # A name of its own per call: a statement left prepared by a failed transaction
    # never blocks the next one (it goes with the connection).
    name = f"{PREPARED_NAME}_{next(_names)}"
    prepared = conn.pgconn.prepare(name.encode(), query.encode("utf-8"))
    if prepared.status != pq.ExecStatus.COMMAND_OK:
        raise ExplainFailed(_error(prepared))
    try:
        args = sql.SQL("({})").format(sql.SQL(", ").join([sql.NULL] * shape.params))
        statement = sql.SQL("{marker} EXPLAIN ({options}) EXECUTE {name}{args}").format(
            marker=sql.SQL(sqlfiles.MARKER),
            options=sql.SQL(options),
            name=sql.Identifier(name),
            args=args if shape.params else sql.SQL(""),
        )
        try:
            row = conn.execute(statement).fetchone()
        except psycopg.Error as exc:
            if conn.broken:
                raise
            raise ExplainFailed(getattr(exc.diag, "message_primary", None) or str(exc)) from None
    finally:
        status = conn.info.transaction_status
        if not conn.broken and status != pq.TransactionStatus.INERROR:
            conn.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name)))
    data = row[0] if isinstance(row[0], list) else json.loads(row[0])
    root = data[0]["Plan"]
    return Plan(root=data[0], cost=float(root["Total Cost"]), indexes=frozenset(_indexes(root)))


def generic_plan(conn: psycopg.Connection, query: str) -> Plan:
    conn.execute(f"{sqlfiles.MARKER} SET plan_cache_mode = force_generic_plan")
    try:
        return explain(conn, query)
    finally:
        if not conn.broken:
            conn.execute(f"{sqlfiles.MARKER} RESET plan_cache_mode")


def _function(ext: Extensions, name: str) -> sql.Composable:
    return sql.Identifier(ext.hypopg_schema or "public", name)


def _create(conn, ext: Extensions, candidate: Candidate) -> tuple[int, str]:
    definition = candidate_sql(candidate, concurrently=False).as_string(conn)
    row = conn.execute(
        sql.SQL("{} SELECT indexrelid, indexname FROM {}(%s)").format(
            sql.SQL(sqlfiles.MARKER), _function(ext, "hypopg_create_index")
        ),
        [definition],
    ).fetchone()
    return int(row[0]), row[1]


def _reset(conn, ext: Extensions) -> None:
    conn.execute(
        sql.SQL("{} SELECT {}()").format(sql.SQL(sqlfiles.MARKER), _function(ext, "hypopg_reset"))
    )


def unverified_reason(ext: Extensions | None, candidate: Candidate) -> str | None:
    if ext is None or not ext.hypopg:
        if ext is not None and ext.hypopg_installed:
            return "Unverified: HypoPG is installed but not created here (CREATE EXTENSION hypopg)."
        return "Unverified: HypoPG is not available on this server (postgresql-NN-hypopg)."
    if candidate.method not in SIMULATED_METHODS:
        return (
            f"Unverified: HypoPG cannot simulate {candidate.method.upper()} indexes; "
            "measure it on a copy before building it in production."
        )
    return None


def prove(
    conn: psycopg.Connection,
    ext: Extensions | None,
    query: str,
    candidates: list[Candidate],
    *,
    min_cost_cut: float = 0.3,
) -> Proof:
    """One proof for candidates that serve a statement together (the branches of an OR)
    or for one candidate."""
    for candidate in candidates:
        reason = unverified_reason(ext, candidate)
        if reason:
            return Proof(status=Proof.UNVERIFIED, reason=reason)
    try:
        _reset(conn, ext)
        before = generic_plan(conn, query)
        names = [_create(conn, ext, c)[1] for c in candidates]
        after = generic_plan(conn, query)
    except ExplainFailed as exc:
        return Proof(status=Proof.UNVERIFIED, reason=f"Unverified: EXPLAIN failed: {exc.message}")
    except psycopg.Error as exc:
        if conn.broken:
            raise
        message = getattr(exc.diag, "message_primary", None) or str(exc)
        return Proof(status=Proof.UNVERIFIED, reason=f"Unverified: HypoPG failed: {message}")
    finally:
        if not conn.broken:
            _reset(conn, ext)
    used = all(name in after.indexes for name in names)
    proof = Proof(status=Proof.PROVEN, cost_before=before.cost, cost_after=after.cost)
    if not used:
        return Proof(
            status=Proof.REJECTED,
            cost_before=before.cost,
            cost_after=after.cost,
            reason=(
                "The planner would not use it: with the hypothetical index the estimated "
                f"cost stays {before.cost:,.1f}."
            ),
        )
    if after.cost > before.cost * (1.0 - min_cost_cut):
        return Proof(
            status=Proof.REJECTED,
            cost_before=before.cost,
            cost_after=after.cost,
            reason=(
                f"The planner would use it, but the estimated cost falls only "
                f"{proof.cut_percent:.0f} % ({before.cost:,.1f} → {after.cost:,.1f}); "
                f"at least {min_cost_cut * 100:.0f} % is required."
            ),
        )
    return proof
