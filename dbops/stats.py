"""Reads from a target's statistics views, on a connection from dbops.connections.

Each function takes an open psycopg connection (autocommit) and returns plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import psycopg
from django.utils import timezone
from psycopg import errors, sql
from psycopg.rows import dict_row

from dbops import advisor, sqlfiles
from dbops.advisor import model as analysis
from dbops.advisor.statements import MIN_TABLE_ROWS
from dbops.connections import query_failure

LONG_RUNNING_SECONDS = 60
ROW_LIMIT = 200
TOP_STATEMENTS = 10
# Statements above the threshold that the index analysis looks at.
ANALYSED_STATEMENTS = 100
SNAPSHOT_STATEMENTS = 500
SNAPSHOT_TABLES = 1000


def fetch(conn: psycopg.Connection, name: str, params: dict | None = None, **identifiers):
    """All rows of a dbops/sql file as dicts. Parameters are always passed (even empty),
    so a literal % is written %% in every file."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sqlfiles.load(name, **identifiers), params or {})
        return cur.fetchall()


def fetch_one(conn: psycopg.Connection, name: str, params: dict | None = None, **identifiers):
    rows = fetch(conn, name, params, **identifiers)
    return rows[0] if rows else None


# --- pg_stat_statements availability --------------------------------------------------


@dataclass(frozen=True)
class StatementsStatus:
    """Whether pg_stat_statements can be read in this database, and if not, why."""

    AVAILABLE = "available"
    NOT_LOADED = "not_loaded"  # extension created, library not preloaded
    NOT_CREATED = "not_created"  # library preloaded (or unknown), extension missing
    MISSING = "missing"  # neither
    NO_ACCESS = "no_access"  # ready, but this user may not read it

    state: str
    database: str
    schema: str | None = None
    version: str | None = None
    # shared_preload_libraries as the server runs with it; None if not readable.
    preload: str | None = None
    error: str = ""

    @property
    def available(self) -> bool:
        return self.state == self.AVAILABLE

    @property
    def needs_preload(self) -> bool:
        return self.state in (self.NOT_LOADED, self.MISSING)

    @property
    def needs_create_extension(self) -> bool:
        return self.state in (self.NOT_CREATED, self.MISSING)

    @property
    def preload_statement(self) -> str:
        libraries = [x.strip() for x in (self.preload or "").split(",") if x.strip()]
        libraries.append("pg_stat_statements")
        value = sql.Literal(", ".join(libraries)).as_string()
        return f"ALTER SYSTEM SET shared_preload_libraries = {value};"

    @property
    def describe(self) -> str:
        return {
            self.AVAILABLE: f"available (version {self.version})",
            self.NOT_LOADED: "extension created but the library is not preloaded",
            self.NOT_CREATED: "library preloaded but the extension is not created here",
            self.MISSING: "not preloaded and not created",
            self.NO_ACCESS: "ready, but this user may not read it (GRANT pg_read_all_stats)",
        }.get(self.state, self.state)

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema or "public", "pg_stat_statements")


def _preload(conn: psycopg.Connection) -> str | None:
    try:
        row = conn.execute(
            f"{sqlfiles.MARKER} SELECT current_setting('shared_preload_libraries')"
        ).fetchone()
    except errors.InsufficientPrivilege:
        return None
    return row[0] if row else None


def statements_status(conn: psycopg.Connection) -> StatementsStatus:
    database = conn.info.dbname
    preload = _preload(conn)
    ext = fetch_one(conn, "statements_extension")
    if ext is None:
        loaded = preload is not None and "pg_stat_statements" in preload
        state = StatementsStatus.NOT_CREATED if loaded else StatementsStatus.MISSING
        return StatementsStatus(state=state, database=database, preload=preload)
    version, schema = ext["version"], ext["schema"]
    status = StatementsStatus(
        state=StatementsStatus.AVAILABLE,
        database=database,
        schema=schema,
        version=version,
        preload=preload,
    )
    try:
        fetch(conn, "statements_probe", statements=status.identifier)
    except errors.ObjectNotInPrerequisiteState:
        return replace(status, state=StatementsStatus.NOT_LOADED)
    except psycopg.Error as exc:
        return replace(status, state=StatementsStatus.NO_ACCESS, error=query_failure(exc))
    return status


def statements_reset_at(conn: psycopg.Connection, status: StatementsStatus):
    """When pg_stat_statements was last reset (extension 1.9+), else None."""
    try:
        row = fetch_one(
            conn,
            "statements_reset",
            info=sql.Identifier(status.schema or "public", "pg_stat_statements_info"),
        )
    except psycopg.Error:
        return None
    return row["stats_reset"] if row else None


# --- test connection ----------------------------------------------------------------------


def connection_report(conn: psycopg.Connection) -> dict[str, Any]:
    """Server version, pg_stat_statements and the privileges the portal lacks."""
    info = fetch_one(conn, "check")
    status = statements_status(conn)
    if info["server_version_num"] >= 170000:
        tables = fetch_one(conn, "unmaintainable_tables_pg17")
    else:
        tables = fetch_one(conn, "unmaintainable_tables")
    missing: list[str] = []
    if not info["is_superuser"] and not info["has_pg_monitor"]:
        if not info["has_pg_read_all_stats"]:
            missing.append(
                "pg_monitor (or pg_read_all_stats): needed to see other sessions' "
                "statements, their locks and all of pg_stat_statements"
            )
        if not info["has_pg_read_all_settings"]:
            missing.append(
                "pg_monitor (or pg_read_all_settings): needed to read "
                "shared_preload_libraries and other restricted settings"
            )
    if tables["tables"]:
        examples = ", ".join(tables["examples"] or [])
        if info["server_version_num"] >= 170000:
            missing.append(
                f"MAINTAIN on {tables['tables']} table(s) (e.g. {examples}): needed for "
                "VACUUM, ANALYZE and REINDEX; GRANT pg_maintain, or ownership for CREATE INDEX"
            )
        else:
            missing.append(
                f"ownership of {tables['tables']} table(s) (e.g. {examples}): VACUUM, "
                "ANALYZE, REINDEX and CREATE INDEX need the table's owner, a member of the "
                "owning role or a superuser (PostgreSQL 16 and older have no MAINTAIN)"
            )
    if not status.available:
        missing.append(f"pg_stat_statements: {status.describe}")
    return {
        "ok": True,
        "server_version": info["server_version"],
        "server_version_num": info["server_version_num"],
        "user": info["username"],
        "is_superuser": info["is_superuser"],
        "has_pg_monitor": info["has_pg_monitor"],
        "has_pg_read_all_stats": info["has_pg_read_all_stats"],
        "statements": {
            "state": status.state,
            "describe": status.describe,
            "version": status.version,
            "available_version": info["statements_available_version"],
        },
        "unmaintainable_tables": tables["tables"],
        "missing": missing,
    }


# --- health -------------------------------------------------------------------------------


@dataclass
class Section:
    rows: list[dict] = field(default_factory=list)
    error: str = ""


def _section(conn: psycopg.Connection, name: str, params: dict | None = None) -> Section:
    """One part of the health page; a failure there (a missing privilege, a lock
    timeout) is shown in its place instead of failing the page."""
    try:
        return Section(rows=fetch(conn, name, params))
    except psycopg.Error as exc:
        if conn.broken:
            raise
        return Section(error=query_failure(exc))


@dataclass
class Health:
    overview: dict
    connections: Section
    long_running: Section
    blocked: Section
    tables: Section
    unused_indexes: Section
    duplicate_indexes: Section
    invalid_indexes: Section

    @property
    def usable_connections(self) -> int:
        return self.overview["max_connections"] - self.overview["reserved_connections"]

    @property
    def used_connections(self) -> int:
        return sum(r["connections"] for r in self.connections.rows)

    @property
    def connections_percent(self) -> float:
        usable = self.usable_connections
        return 100.0 * self.used_connections / usable if usable > 0 else 100.0

    @property
    def xid_percent(self) -> float:
        """Transaction-id age as a share of the 2^31 wraparound limit."""
        return 100.0 * self.overview["xid_age"] / 2**31

    @property
    def table_count(self) -> int:
        rows = self.tables.rows
        return rows[0]["table_count"] if rows else 0


def health(conn: psycopg.Connection, *, long_running_seconds: int = LONG_RUNNING_SECONDS) -> Health:
    return Health(
        overview=fetch_one(conn, "overview"),
        connections=_section(conn, "connections"),
        long_running=_section(
            conn, "long_running", {"min_seconds": long_running_seconds, "limit": ROW_LIMIT}
        ),
        blocked=_section(conn, "blocked", {"limit": ROW_LIMIT}),
        tables=_section(conn, "tables", {"limit": ROW_LIMIT}),
        unused_indexes=_section(conn, "unused_indexes", {"limit": ROW_LIMIT}),
        duplicate_indexes=_section(conn, "duplicate_indexes", {"limit": ROW_LIMIT}),
        invalid_indexes=_section(conn, "invalid_indexes", {"limit": ROW_LIMIT}),
    )


# --- query performance --------------------------------------------------------------------


def _statement(row: dict) -> analysis.Statement:
    return analysis.Statement(
        queryid=row["queryid"],
        query=row["query"] or "",
        calls=row["calls"],
        total_exec_time=row["total_exec_time"],
        mean_exec_time=row["mean_exec_time"] or 0.0,
        rows=row["rows"],
        share=row.get("share"),
    )


def top_statements(
    conn: psycopg.Connection, status: StatementsStatus, *, threshold_ms: float, limit: int
) -> list[analysis.Statement]:
    rows = fetch(
        conn,
        "top_statements",
        {"threshold_ms": threshold_ms, "limit": limit},
        statements=status.identifier,
    )
    return [_statement(r) for r in rows]


def statements_for_snapshot(
    conn: psycopg.Connection, status: StatementsStatus, *, limit: int = SNAPSHOT_STATEMENTS
) -> list[analysis.Statement]:
    rows = fetch(conn, "statements_snapshot", {"limit": limit}, statements=status.identifier)
    return [_statement(r) for r in rows]


def statement(
    conn: psycopg.Connection, status: StatementsStatus, queryid: int
) -> analysis.Statement | None:
    row = fetch_one(conn, "statement", {"queryid": queryid}, statements=status.identifier)
    return _statement(row) if row else None


def table_scans(conn: psycopg.Connection, *, min_rows: int) -> list[analysis.TableScans]:
    rows = fetch(conn, "table_scans", {"min_rows": min_rows, "limit": ROW_LIMIT})
    return [
        analysis.TableScans(
            schema=r["schema"],
            name=r["name"],
            seq_scan=r["seq_scan"] or 0,
            idx_scan=r["idx_scan"],
            n_live_tup=r["n_live_tup"] or 0,
            seq_tup_read=r["seq_tup_read"] or 0,
        )
        for r in rows
    ]


def tables_for_snapshot(conn: psycopg.Connection) -> list[dict]:
    return fetch(conn, "tables_snapshot", {"limit": SNAPSHOT_TABLES})


def advice(
    conn: psycopg.Connection,
    statements: list[analysis.Statement],
    settings: advisor.Settings | None = None,
) -> advisor.Advice:
    """Index suggestions for the statements, proven with HypoPG where the target has it."""
    return advisor.advise_on(conn, statements, settings=settings)


@dataclass
class QueryPerformance:
    status: StatementsStatus
    threshold_ms: float
    top: list[analysis.Statement] = field(default_factory=list)
    groups: list[analysis.StatementGroup] = field(default_factory=list)
    seq_scans: list[analysis.TableScans] = field(default_factory=list)
    suggestions: list[analysis.Suggestion] = field(default_factory=list)
    # Candidates HypoPG showed the planner would not use, or that would not pay.
    rejected: list[analysis.Suggestion] = field(default_factory=list)
    extensions: Any = None
    min_cost_cut_percent: float = 30.0
    reset_at: Any = None


def query_performance(conn: psycopg.Connection, *, threshold_ms: float) -> QueryPerformance:
    status = statements_status(conn)
    result = QueryPerformance(status=status, threshold_ms=threshold_ms)
    if not status.available:
        return result
    slow = top_statements(conn, status, threshold_ms=threshold_ms, limit=ANALYSED_STATEMENTS)
    result.top = slow[:TOP_STATEMENTS]
    result.reset_at = statements_reset_at(conn, status)
    groups = advisor.group_statements(statements_for_snapshot(conn, status))
    result.groups = groups[:TOP_STATEMENTS]
    result.seq_scans = advisor.seq_scan_tables(table_scans(conn, min_rows=MIN_TABLE_ROWS))
    settings = advisor.settings_from_django()
    result.min_cost_cut_percent = round(settings.min_cost_cut * 100)
    found = advice(conn, slow, settings)
    result.suggestions, result.rejected = found.suggestions, found.rejected
    result.extensions = found.extensions
    return result


def relation_exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    row = conn.execute(
        f"{sqlfiles.MARKER} SELECT to_regclass(%s) IS NOT NULL",
        [sql.Identifier(schema, name).as_string(conn)],
    ).fetchone()
    return bool(row and row[0])


def measure_improvement(suggestion, conn: psycopg.Connection) -> dict[str, Any]:
    """The statement's mean time over the calls made since the baseline, against the
    baseline's mean. pg_stat_statements is cumulative, so the new calls are isolated as
    (total now − total then) / (calls now − calls then)."""
    status = statements_status(conn)
    current = statement(conn, status, suggestion.queryid) if status.available else None
    before = suggestion.mean_exec_time_before
    if current is None:
        return {"status": "statement not found", "mean_before_ms": before}
    new_calls = current.calls - suggestion.calls_before
    if new_calls <= 0:
        return {"status": "awaiting calls", "mean_before_ms": before, "new_calls": 0}
    total_before = suggestion.mean_exec_time_before * suggestion.calls_before
    mean_after = max(current.total_exec_time - total_before, 0.0) / new_calls
    return {
        "status": "measured",
        "mean_before_ms": round(before, 3),
        "mean_after_ms": round(mean_after, 3),
        "new_calls": new_calls,
        "improvement_percent": round(100.0 * (before - mean_after) / before, 1) if before else None,
        "calls_now": current.calls,
    }


# --- a statistics snapshot as read from a target -------------------------------------------


@dataclass
class SnapshotData:
    taken_at: datetime
    statements_available: bool = False
    stats_reset: datetime | None = None
    statements: list[analysis.Statement] = field(default_factory=list)
    tables: list[dict] = field(default_factory=list)
    connections_used: int | None = None
    error: str = ""


def read_snapshot(conn: psycopg.Connection) -> SnapshotData:
    data = SnapshotData(taken_at=timezone.now())
    status = statements_status(conn)
    if status.available:
        data.statements_available = True
        data.statements = statements_for_snapshot(conn, status)
        data.stats_reset = statements_reset_at(conn, status)
    data.tables = tables_for_snapshot(conn)
    data.connections_used = conn.execute(sqlfiles.load("proc_connections")).fetchone()[0]
    return data
