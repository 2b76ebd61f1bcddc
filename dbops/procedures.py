"""Database maintenance procedures (seed: DB_MAINTENANCE_PROCEDURES).

VACUUM, ANALYZE, REINDEX and UPGRADE plug into the maintenance procedure framework, so
they only run inside an approved change in an open window, with every step recorded.
Each run: pre-checks DISK_SPACE, CONNECTIONS and LOCKS (measured value and threshold),
a per-target advisory lock, stakeholders notified, per-table work on an autocommit
connection with lock and statement timeouts, then verification from the statistics.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django import forms
from psycopg import sql
from psycopg.rows import dict_row

from dbops import sqlfiles
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget
from maintenance.procedures import register
from maintenance.procedures.base import Procedure, RunContext, StepFailed, StepSpec

LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT_MS = 4 * 60 * 60 * 1000
LOCK_RETRIES = (1, 2, 4)  # seconds of backoff before giving a table up
OLD_TRANSACTION_SECONDS = 5 * 60
DISK_FACTOR = 1.2
# Per-target advisory lock key: "portal" in ASCII plus the target id, so two runs on the
# same target exclude each other while runs on different targets do not.
ADVISORY_BASE = 0x706F7274616C << 16


@dataclass(frozen=True)
class Table:
    schema: str
    name: str

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"


def _fetch(conn: psycopg.Connection, name: str, params: dict | None = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sqlfiles.load(name), params)
        return list(cur.fetchall())


def catalog_tables(target: DatabaseTarget) -> list[dict]:
    with connect(target) as conn:
        return _fetch(conn, "proc_tables")


def _tables_params(tables: list[Table]) -> dict[str, list[str]]:
    return {"schemas": [t.schema for t in tables], "names": [t.name for t in tables]}


# --- the parameter form ------------------------------------------------------------------


class TableMaintenanceForm(forms.Form):
    target = forms.ModelChoiceField(
        label="Database target", queryset=DatabaseTarget.objects.filter(is_active=True)
    )
    tables = forms.MultipleChoiceField(
        label="Tables",
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="Chosen from the target's catalog. Leave empty to use the dead-tuple ratio.",
    )
    dead_ratio_min = forms.DecimalField(
        label="Or every table with a dead-tuple ratio above (%)",
        required=False,
        min_value=0,
        max_value=100,
        decimal_places=2,
    )
    disk_override_reason = forms.CharField(
        label="Run even if free disk space is unknown, because",
        required=False,
        max_length=500,
        help_text="Only when the worker cannot measure free space and the target has no "
        "configured capacity. Recorded in the audit trail.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog: dict[str, dict] = {}
        target_id = self.data.get("target") or self.initial.get("target")
        target = (
            DatabaseTarget.objects.filter(pk=target_id).first()
            if str(target_id or "").isdigit()
            else None
        )
        if target is not None:
            try:
                rows = catalog_tables(target)
            except TargetUnavailable as exc:
                self.catalog_error = exc.message
                rows = []
            self.catalog = {row["qualified"]: row for row in rows}
        self.fields["tables"].choices = [
            (q, f"{q} — {row['dead']} dead ({row['dead_percent']}%)")
            for q, row in self.catalog.items()
        ]

    def clean(self):
        cleaned = super().clean()
        if getattr(self, "catalog_error", None):
            raise forms.ValidationError(self.catalog_error)
        if not cleaned.get("tables") and cleaned.get("dead_ratio_min") is None:
            raise forms.ValidationError(
                "Choose tables from the target's catalog, or give a dead-tuple ratio."
            )
        return cleaned


def _table_params(form: TableMaintenanceForm, cleaned: dict[str, Any]) -> dict[str, Any]:
    chosen = [form.catalog[q] for q in cleaned.get("tables") or []]
    ratio = cleaned.get("dead_ratio_min")
    return {
        "target": cleaned["target"].pk,
        "tables": [[row["schema"], row["name"]] for row in chosen],
        "dead_ratio_min": float(ratio) if ratio is not None else None,
        "disk_override_reason": cleaned.get("disk_override_reason", "").strip(),
    }


# --- shared run machinery ---------------------------------------------------------------------


def _target(ctx: RunContext) -> DatabaseTarget:
    target = DatabaseTarget.objects.filter(pk=ctx.params.get("target")).first()
    if target is None:
        raise StepFailed("The database target no longer exists.")
    return target


def _open(ctx: RunContext) -> psycopg.Connection:
    """The run's one autocommit connection: VACUUM and CONCURRENTLY refuse transaction
    blocks, and the advisory lock lives as long as this session."""
    conn = ctx.state.get("conn")
    if conn is None or conn.closed:
        target = _target(ctx)
        try:
            manager = connect(
                target, autocommit=True, statement_timeout_ms=None, lock_timeout_ms=None
            )
            conn = manager.__enter__()
        except TargetUnavailable as exc:
            raise StepFailed(exc.message) from None
        ctx.state["conn"] = conn
        ctx.state["conn_manager"] = manager
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        conn.execute(
            sql.SQL("SET statement_timeout = {}").format(sql.Literal(STATEMENT_TIMEOUT_MS))
        )
    return conn


def _close(ctx: RunContext) -> None:
    manager = ctx.state.pop("conn_manager", None)
    ctx.state.pop("conn", None)
    if manager is not None:
        # Closing a broken connection must not hide the run's real outcome.
        with contextlib.suppress(Exception):
            manager.__exit__(None, None, None)


def _resolve_tables(ctx: RunContext, conn: psycopg.Connection) -> list[Table]:
    """The tables to work on, each checked against the catalog again now."""
    if "resolved" in ctx.state:
        return [Table(*pair) for pair in ctx.state["resolved"]]
    catalog = {(r["schema"], r["name"]): r for r in _fetch(conn, "proc_tables")}
    wanted = [tuple(pair) for pair in ctx.params.get("tables") or []]
    missing = [f"{s}.{n}" for s, n in wanted if (s, n) not in catalog]
    if missing:
        raise StepFailed(f"Not in the target's catalog (refused): {', '.join(missing)}.")
    if not wanted and ctx.params.get("dead_ratio_min") is not None:
        ratio = float(ctx.params["dead_ratio_min"])
        wanted = [key for key, row in catalog.items() if float(row["dead_percent"]) > ratio]
    tables = [Table(s, n) for s, n in wanted]
    ctx.state["resolved"] = [[t.schema, t.name] for t in tables]
    return tables


def _processed(ctx: RunContext) -> list[Table]:
    """The tables the run actually worked on (skipped ones are left out)."""
    done = set(ctx.state.get("done", []))
    return [t for t in (Table(*p) for p in ctx.state["resolved"]) if t.label in done]


def _stats(conn: psycopg.Connection, tables: list[Table]) -> dict[str, dict]:
    rows = _fetch(conn, "proc_table_stats", _tables_params(tables))
    return {f"{r['schema']}.{r['name']}": r for r in rows}


def _jsonable(value: Any) -> Any:
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    )


def _after(moment: str | None, start: str) -> bool:
    return bool(moment) and datetime.fromisoformat(moment) >= datetime.fromisoformat(start)


class _ProgressWatcher:
    """Polls the progress views for the working backend on a second connection."""

    def __init__(self, ctx: RunContext, pid: int, label: str):
        self.ctx, self.pid, self.label = ctx, pid, label
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.last_phase = None

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        try:
            with connect(_target(self.ctx)) as conn:
                while not self.stop.wait(0.5):
                    rows = _fetch(conn, "proc_progress", {"pid": self.pid})
                    for row in rows:
                        if row["phase"] != self.last_phase:
                            self.last_phase = row["phase"]
                            self.ctx.log(f"  {self.label}: {row['kind']} {row['phase']}\n")
                        if row["total"]:
                            self.ctx.set_progress(100 * (row["done"] or 0) / row["total"])
        except Exception:  # progress is a nicety; the work goes on without it
            return


def _run_each(ctx: RunContext, tables: list[Table], build, verb: str) -> dict[str, Any]:
    """Run a statement per table, retrying lock timeouts with backoff, then skipping."""
    conn = _open(ctx)
    done, skipped = [], []
    for n, table in enumerate(tables, start=1):
        statement = build(table)
        text = statement.as_string(conn)
        for attempt, pause in enumerate((*LOCK_RETRIES, None), start=1):
            ctx.log(f"{text}\n")
            started = time.monotonic()
            try:
                with _ProgressWatcher(ctx, conn.info.backend_pid, table.label):
                    conn.execute(statement)
            except psycopg.errors.LockNotAvailable:
                if pause is None:
                    skipped.append(table.label)
                    ctx.log(f"  skipped {table.label}: still locked after {attempt} tries\n")
                    break
                ctx.log(f"  {table.label} is locked; retrying in {pause} s\n")
                time.sleep(pause)
                continue
            except psycopg.Error as exc:
                raise StepFailed(f"{verb} {table.label} failed: {query_failure(exc)}") from None
            ctx.log(f"  done in {time.monotonic() - started:.2f} s\n")
            done.append(table.label)
            break
        ctx.set_progress(100 * n / max(len(tables), 1))
    ctx.state["done"], ctx.state["skipped"] = done, skipped
    if not done and tables:
        raise StepFailed(f"No table could be processed: {', '.join(skipped)} stayed locked.")
    return {"done": done, "skipped": skipped}


# --- pre-checks --------------------------------------------------------------------------------


def _check(name: str, ok: bool, value: Any, threshold: Any, message: str) -> dict[str, Any]:
    result = {
        "check": name,
        "passed": ok,
        "value": value,
        "threshold": threshold,
        "message": message,
    }
    if not ok:
        raise StepFailed(f"{name}: {message}", _jsonable(result))
    return _jsonable(result)


def check_target_lock(ctx: RunContext) -> dict[str, Any]:
    conn = _open(ctx)
    key = ADVISORY_BASE + int(ctx.params["target"])
    got = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
    target = _target(ctx)
    return _check(
        "TARGET_LOCK",
        bool(got),
        "free" if got else "held",
        "free",
        "No other maintenance run is using this target."
        if got
        else f"Another maintenance run is already working on {target.name}; this one "
        "was refused. Try again when it has finished.",
    )


def check_connections(ctx: RunContext) -> dict[str, Any]:
    conn = _open(ctx)
    row = _fetch(conn, "proc_connections")[0]
    usable = max(row["max_connections"] - row["reserved"], 1)
    percent = round(100.0 * row["used"] / usable, 1)
    threshold = _target(ctx).connections_threshold_percent
    return _check(
        "CONNECTIONS",
        percent < threshold,
        f"{row['used']} of {usable} ({percent}%)",
        f"< {threshold}%",
        f"{percent}% of usable connections in use (limit {threshold}%).",
    )


def check_locks(ctx: RunContext) -> dict[str, Any]:
    conn = _open(ctx)
    tables = _resolve_tables(ctx, conn)
    locks = _fetch(conn, "proc_locks", _tables_params(tables)) if tables else []
    old = _fetch(conn, "proc_old_transactions", {"seconds": OLD_TRANSACTION_SECONDS})
    problems = [
        f"{r['schema']}.{r['name']}: {r['mode']} "
        f"{'held' if r['granted'] else 'waiting'} by pid {r['pid']}"
        for r in locks
    ]
    problems += [
        f"transaction of pid {r['pid']} open for {int(r['seconds'])} s holds back the xmin horizon"
        for r in old
    ]
    return _check(
        "LOCKS",
        not problems,
        problems or "none",
        f"no ungranted or ACCESS EXCLUSIVE locks; no transaction over "
        f"{OLD_TRANSACTION_SECONDS // 60} min",
        "; ".join(problems) if problems else "No blocking locks or old transactions.",
    )


def _free_bytes(ctx: RunContext, conn: psycopg.Connection) -> tuple[int | None, str]:
    try:
        directory = conn.execute("SHOW data_directory").fetchone()[0]
    except psycopg.Error:
        directory = None
    if directory:
        try:
            return shutil.disk_usage(directory).free, f"free space of {directory}"
        except OSError:
            pass
    target = _target(ctx)
    if target.disk_capacity_bytes:
        used = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        return max(
            target.disk_capacity_bytes - used, 0
        ), "configured capacity minus the database size"
    return None, "unknown"


def make_disk_check(needs_space: bool):
    def check_disk(ctx: RunContext) -> dict[str, Any]:
        conn = _open(ctx)
        tables = _resolve_tables(ctx, conn)
        if not needs_space:
            return _check(
                "DISK_SPACE", True, "not needed", "—", "This operation does not rewrite tables."
            )
        try:
            sizes = _fetch(conn, "proc_sizes", _tables_params(tables))
        except psycopg.errors.LockNotAvailable:
            raise StepFailed(
                "DISK_SPACE: the tables' size cannot be read, another session "
                "holds a lock on them (see LOCKS)."
            ) from None
        need = int(DISK_FACTOR * sum(int(r["total_bytes"]) for r in sizes))
        free, source = _free_bytes(ctx, conn)
        if free is None:
            reason = ctx.params.get("disk_override_reason") or ""
            if reason:
                return _check(
                    "DISK_SPACE",
                    True,
                    "unknown (overridden)",
                    need,
                    f"Free space unknown; run allowed by the operator: {reason}",
                )
            return _check(
                "DISK_SPACE",
                False,
                "unknown",
                need,
                "Free disk space cannot be measured from the worker and the target "
                "has no configured capacity. Configure it, or override with a "
                "reason.",
            )
        return _check(
            "DISK_SPACE",
            free >= need,
            f"{free} bytes ({source})",
            f">= {need} bytes (1.2 × the tables' size)",
            f"{free} bytes free, {need} needed.",
        )

    return check_disk


def notify_stakeholders(ctx: RunContext) -> dict[str, Any]:
    """Seed step 1: notify stakeholders before the work starts."""
    from changes.models import ChangeRequest
    from maintenance.models import ScheduledChange
    from maintenance.services import window_stakeholders
    from portal.notifications import notify

    change = ChangeRequest.objects.get(pk=ctx.change_id)
    slot = ScheduledChange.objects.filter(change=change).select_related("window").first()
    users = window_stakeholders(slot.window)[0] if slot else [change.requester]
    target = _target(ctx)
    tables = ", ".join(t for t in (f"{s}.{n}" for s, n in ctx.state.get("resolved", [])))
    notify(
        recipients=users,
        subject=f"Starting database maintenance on {target.name} for {change.public_id}",
        body=f"Tables: {tables or 'none'}",
        url=change.get_absolute_url(),
        dedup_key=f"run:{ctx.run_id}:db-start",
    )
    return {"notified": len(users)}


def _baseline(ctx: RunContext) -> dict[str, Any]:
    conn = _open(ctx)
    tables = _resolve_tables(ctx, conn)
    ctx.state["started_at"] = conn.execute("SELECT now()").fetchone()[0].isoformat()
    ctx.state["before"] = _jsonable(_stats(conn, tables))
    return {"tables": [t.label for t in tables]}


def _flush_and_read(ctx: RunContext, tables: list[Table]) -> dict[str, dict]:
    conn = _open(ctx)
    # The statistics of this session's work reach the shared stats only when flushed.
    conn.execute("SELECT pg_stat_force_next_flush()")
    with connect(_target(ctx)) as reader:
        reader.execute("SELECT pg_stat_clear_snapshot()")
        return _stats(reader, tables)


# --- the procedures -----------------------------------------------------------------------------


class _TableProcedure(Procedure):
    form_class = TableMaintenanceForm
    rewrites = False

    def params_from(self, form: TableMaintenanceForm) -> dict[str, Any]:
        # The form maps the chosen quoted names back to (schema, table) pairs.
        return {**_table_params(form, form.cleaned_data), **self.options(form.data)}

    def options(self, data) -> dict[str, Any]:
        return {}

    def summary(self, params: dict[str, Any]) -> str:
        target = DatabaseTarget.objects.filter(pk=params.get("target")).first()
        tables = [f"{s}.{n}" for s, n in params.get("tables") or []]
        which = (
            ", ".join(tables)
            if tables
            else (f"every table over {params.get('dead_ratio_min')}% dead tuples")
        )
        return f"{self.verb()} on {target.name if target else '(missing target)'}: {which}"

    def verb(self) -> str:
        return self.label

    def max_minutes(self, params: dict[str, Any]) -> int:
        return 30

    def prechecks(self, ctx: RunContext) -> list[StepSpec]:
        return [
            StepSpec("Per-target lock", check_target_lock),
            StepSpec("DISK_SPACE", make_disk_check(self.rewrites)),
            StepSpec("CONNECTIONS", check_connections),
            StepSpec("LOCKS", check_locks),
        ]

    def cleanup(self, ctx: RunContext) -> None:
        _close(ctx)


def _bool(data, name: str, default: bool) -> bool:
    value = data.get(name, default)
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "on", "yes")


@register
class Vacuum(_TableProcedure):
    kind = "db_vacuum"
    label = "VACUUM"
    description = "VACUUM the chosen tables (ANALYZE and FULL optional), then verify."

    class form_class(TableMaintenanceForm):
        analyze = forms.BooleanField(label="ANALYZE as well", required=False, initial=True)
        full = forms.BooleanField(
            label="FULL (rewrites the table, takes an exclusive lock)", required=False
        )

    def options(self, data) -> dict[str, Any]:
        return {"analyze": _bool(data, "analyze", False), "full": _bool(data, "full", False)}

    def verb(self) -> str:
        return "VACUUM"

    def summary(self, params):
        opts = [o for o in ("full", "analyze") if params.get(o)]
        text = super().summary(params)
        return (
            text.replace("VACUUM", f"VACUUM ({', '.join(o.upper() for o in opts)})", 1)
            if opts
            else text
        )

    def prechecks(self, ctx):
        checks = super().prechecks(ctx)
        checks[1] = StepSpec("DISK_SPACE", make_disk_check(bool(ctx.params.get("full"))))
        return checks

    def statement(self, params) -> callable:
        options = [sql.SQL(o) for o in ("FULL", "ANALYZE") if params.get(o.lower())]

        def build(table: Table) -> sql.Composed:
            if options:
                return sql.SQL("VACUUM ({}) {}").format(
                    sql.SQL(", ").join(options), table.identifier
                )
            return sql.SQL("VACUUM {}").format(table.identifier)

        return build

    def steps(self, ctx):
        build = self.statement(ctx.params)
        return [
            StepSpec("Record the statistics before", _baseline),
            StepSpec("Notify stakeholders", notify_stakeholders),
            StepSpec(
                "VACUUM each table",
                lambda c: _run_each(c, _resolve_tables(c, _open(c)), build, "VACUUM"),
            ),
        ]

    def verify(self, ctx):
        def verify_tables(c: RunContext) -> dict[str, Any]:
            tables = _processed(c)
            after = _jsonable(_flush_and_read(c, tables))
            started = c.state["started_at"]
            rows, problems = [], []
            for t in tables:
                before, now = c.state["before"].get(t.label, {}), after.get(t.label, {})
                vacuumed = max(
                    filter(None, [now.get("last_vacuum"), now.get("last_autovacuum")]), default=None
                )
                row = {
                    "table": t.label,
                    "dead_before": before.get("dead"),
                    "dead_after": now.get("dead"),
                    "last_vacuum": vacuumed,
                    "last_analyze": now.get("last_analyze"),
                }
                rows.append(row)
                if not _after(vacuumed, started):
                    problems.append(f"{t.label}: last_vacuum is not after the run started")
                if c.params.get("analyze") and not _after(now.get("last_analyze"), started):
                    problems.append(f"{t.label}: last_analyze is not after the run started")
                if (before.get("dead") or 0) > 0 and (now.get("dead") or 0) >= before["dead"]:
                    problems.append(
                        f"{t.label}: dead tuples did not go down "
                        f"({before['dead']} → {now.get('dead')})"
                    )
            c.state["comparison"] = rows
            if problems:
                raise StepFailed(
                    "Verification failed: " + "; ".join(problems), {"comparison": rows}
                )
            return {"comparison": rows}

        return [StepSpec("Statistics show the tables vacuumed", verify_tables)]


@register
class Analyze(_TableProcedure):
    kind = "db_analyze"
    label = "ANALYZE"
    description = "ANALYZE the chosen tables, then verify last_analyze."

    def steps(self, ctx):
        return [
            StepSpec("Record the statistics before", _baseline),
            StepSpec("Notify stakeholders", notify_stakeholders),
            StepSpec(
                "ANALYZE each table",
                lambda c: _run_each(
                    c,
                    _resolve_tables(c, _open(c)),
                    lambda t: sql.SQL("ANALYZE {}").format(t.identifier),
                    "ANALYZE",
                ),
            ),
        ]

    def verify(self, ctx):
        def verify_tables(c: RunContext) -> dict[str, Any]:
            tables = _processed(c)
            after = _jsonable(_flush_and_read(c, tables))
            rows = [
                {"table": t.label, "last_analyze": after.get(t.label, {}).get("last_analyze")}
                for t in tables
            ]
            late = [
                r["table"] for r in rows if not _after(r["last_analyze"], c.state["started_at"])
            ]
            if late:
                raise StepFailed(
                    f"Verification failed: not analysed: {', '.join(late)}", {"comparison": rows}
                )
            return {"comparison": rows}

        return [StepSpec("Statistics show the tables analysed", verify_tables)]


@register
class Reindex(_TableProcedure):
    kind = "db_reindex"
    label = "REINDEX"
    description = "REINDEX the chosen tables' indexes (CONCURRENTLY by default)."
    rewrites = True

    class form_class(TableMaintenanceForm):
        concurrently = forms.BooleanField(
            label="CONCURRENTLY (no long write lock)", required=False, initial=True
        )

    def options(self, data) -> dict[str, Any]:
        return {"concurrently": _bool(data, "concurrently", False)}

    def steps(self, ctx):
        concurrently = bool(ctx.params.get("concurrently"))

        def build(t: Table) -> sql.Composed:
            if concurrently:
                return sql.SQL("REINDEX TABLE CONCURRENTLY {}").format(t.identifier)
            return sql.SQL("REINDEX TABLE {}").format(t.identifier)

        return [
            StepSpec("Record the indexes before", self._indexes_before),
            StepSpec("Notify stakeholders", notify_stakeholders),
            StepSpec(
                "REINDEX each table",
                lambda c: _run_each(c, _resolve_tables(c, _open(c)), build, "REINDEX"),
            ),
        ]

    @staticmethod
    def _indexes_before(ctx: RunContext) -> dict[str, Any]:
        conn = _open(ctx)
        tables = _resolve_tables(ctx, conn)
        rows = _jsonable(_fetch(conn, "proc_indexes", _tables_params(tables)))
        ctx.state["indexes_before"] = rows
        return {"indexes": rows}

    def verify(self, ctx):
        def valid(c: RunContext) -> dict[str, Any]:
            conn = _open(c)
            tables = [Table(*p) for p in c.state["resolved"]]
            rows = _jsonable(_fetch(conn, "proc_indexes", _tables_params(tables)))
            invalid = [r["index_name"] for r in rows if not r["valid"]]
            if invalid:
                raise StepFailed(
                    f"Invalid indexes after REINDEX: {', '.join(invalid)}", {"indexes": rows}
                )
            return {"indexes": rows, "before": c.state.get("indexes_before")}

        return [StepSpec("Every index is valid", valid)]


class UpgradeForm(forms.Form):
    target = forms.ModelChoiceField(
        label="Database target", queryset=DatabaseTarget.objects.filter(is_active=True)
    )
    extension = forms.CharField(label="Extension", max_length=63)
    version = forms.CharField(
        label="To version (empty: the default)", required=False, max_length=63
    )

    def clean(self):
        cleaned = super().clean()
        target, name = cleaned.get("target"), cleaned.get("extension")
        if not target or not name:
            return cleaned
        try:
            with connect(target) as conn:
                rows = {r["name"]: r for r in _fetch(conn, "proc_extensions")}
        except TargetUnavailable as exc:
            raise forms.ValidationError(exc.message) from None
        if name not in rows:
            raise forms.ValidationError(f"{name!r} is not installed on {target.name}.")
        version = cleaned.get("version") or ""
        if version and version not in rows[name]["available"]:
            raise forms.ValidationError(
                f"{name} has no version {version!r}; available: "
                f"{', '.join(rows[name]['available'])}."
            )
        return cleaned


@register
class Upgrade(Procedure):
    kind = "db_upgrade"
    label = "UPGRADE (extension)"
    description = "ALTER EXTENSION … UPDATE [TO version]; records the versions before/after."
    form_class = UpgradeForm

    def to_json(self, cleaned):
        return {
            "target": cleaned["target"].pk,
            "extension": cleaned["extension"],
            "version": cleaned.get("version") or "",
        }

    def summary(self, params):
        to = f" to {params['version']}" if params.get("version") else ""
        return f"ALTER EXTENSION {params.get('extension')} UPDATE{to}"

    def max_minutes(self, params):
        return 10

    def prechecks(self, ctx):
        return [
            StepSpec("Per-target lock", check_target_lock),
            StepSpec("CONNECTIONS", check_connections),
        ]

    def _version(self, ctx) -> str | None:
        row = (
            _open(ctx)
            .execute(
                "SELECT extversion FROM pg_extension WHERE extname = %s", [ctx.params["extension"]]
            )
            .fetchone()
        )
        return row[0] if row else None

    def steps(self, ctx):
        def update(c: RunContext) -> dict[str, Any]:
            before = self._version(c)
            if before is None:
                raise StepFailed(f"{c.params['extension']} is not installed.")
            c.state["version_before"] = before
            statement = sql.SQL("ALTER EXTENSION {} UPDATE").format(
                sql.Identifier(c.params["extension"])
            )
            if c.params.get("version"):
                statement = sql.SQL("{} TO {}").format(statement, sql.Literal(c.params["version"]))
            c.log(statement.as_string(_open(c)) + "\n")
            try:
                _open(c).execute(statement)
            except psycopg.Error as exc:
                raise StepFailed(f"ALTER EXTENSION failed: {query_failure(exc)}") from None
            c.state["version_after"] = self._version(c)
            return {"version_before": before, "version_after": c.state["version_after"]}

        return [
            StepSpec("Notify stakeholders", notify_stakeholders),
            StepSpec(f"Update {ctx.params['extension']}", update),
        ]

    def verify(self, ctx):
        def check(c: RunContext) -> dict[str, Any]:
            wanted = c.params.get("version")
            if not wanted:
                wanted = (
                    _open(c)
                    .execute(
                        "SELECT default_version FROM pg_available_extensions WHERE name = %s",
                        [c.params["extension"]],
                    )
                    .fetchone()[0]
                )
            now = self._version(c)
            if now != wanted:
                raise StepFailed(f"{c.params['extension']} is at {now}, expected {wanted}.")
            return {"version_before": c.state.get("version_before"), "version_after": now}

        return [StepSpec("Version is the one asked for", check)]

    def cleanup(self, ctx):
        _close(ctx)


# --- CREATE INDEX CONCURRENTLY for a proposed index suggestion ------------------------------


class CreateIndexForm(forms.Form):
    suggestion = forms.IntegerField(label="Index suggestion", min_value=1)

    def clean_suggestion(self) -> int:
        from dbops.models import IndexSuggestion

        pk = self.cleaned_data["suggestion"]
        if not IndexSuggestion.objects.filter(pk=pk).exists():
            raise forms.ValidationError("No such index suggestion.")
        return pk


def measure_improvement(suggestion, conn: psycopg.Connection | None = None) -> dict[str, Any]:
    """The statement's mean time over the calls made since the baseline, against the
    baseline's mean. pg_stat_statements is cumulative, so the new calls are isolated as
    (total now − total then) / (calls now − calls then)."""
    from dbops import stats

    def read(c: psycopg.Connection):
        status = stats.statements_status(c)
        return stats.statement(c, status, suggestion.queryid) if status.available else None

    if conn is None:
        with connect(suggestion.target) as own:
            current = read(own)
    else:
        current = read(conn)
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


@register
class CreateIndex(Procedure):
    kind = "db_create_index"
    label = "CREATE INDEX CONCURRENTLY"
    description = "Builds a proposed index without blocking writes, then verifies it."
    form_class = CreateIndexForm
    has_rollback = True

    def _suggestion(self, params):
        from dbops.models import IndexSuggestion

        suggestion = (
            IndexSuggestion.objects.select_related("target")
            .filter(pk=params.get("suggestion"))
            .first()
        )
        if suggestion is None:
            raise StepFailed("The index suggestion no longer exists.")
        return suggestion

    def to_json(self, cleaned):
        from dbops.models import IndexSuggestion

        suggestion = IndexSuggestion.objects.get(pk=cleaned["suggestion"])
        return {
            "suggestion": suggestion.pk,
            "target": suggestion.target_id,
            "tables": [[suggestion.schema, suggestion.table]],
            "dead_ratio_min": None,
            "disk_override_reason": "",
        }

    def summary(self, params):
        from dbops.models import IndexSuggestion

        s = IndexSuggestion.objects.filter(pk=params.get("suggestion")).first()
        if s is None:
            return "CREATE INDEX CONCURRENTLY (suggestion missing)"
        return (
            f"CREATE INDEX CONCURRENTLY {s.index_name} ON {s.schema}.{s.table} "
            f"({', '.join(s.columns)})"
        )

    def max_minutes(self, params):
        return 30

    def prechecks(self, ctx):
        return [
            StepSpec("Per-target lock", check_target_lock),
            StepSpec("DISK_SPACE", make_disk_check(True)),
            StepSpec("CONNECTIONS", check_connections),
            StepSpec("LOCKS", check_locks),
        ]

    def steps(self, ctx):
        def build(c: RunContext) -> dict[str, Any]:
            from dbops.analysis import create_index_sql

            s = self._suggestion(c.params)
            conn = _open(c)
            statement = create_index_sql(s.schema, s.table, s.columns, s.index_name)
            c.log(statement.as_string(conn) + "\n")
            c.state["created"] = True
            try:
                with _ProgressWatcher(c, conn.info.backend_pid, f"{s.schema}.{s.table}"):
                    conn.execute(statement)
            except psycopg.Error as exc:
                raise StepFailed(f"CREATE INDEX failed: {query_failure(exc)}") from None
            return {"index": s.index_name}

        return [
            StepSpec("Notify stakeholders", notify_stakeholders),
            StepSpec("Build the index concurrently", build),
        ]

    def verify(self, ctx):
        def valid(c: RunContext) -> dict[str, Any]:
            s = self._suggestion(c.params)
            row = (
                _open(c)
                .execute(
                    "SELECT x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                    "JOIN pg_namespace n ON n.oid = i.relnamespace "
                    "WHERE n.nspname = %s AND i.relname = %s",
                    [s.schema, s.index_name],
                )
                .fetchone()
            )
            if not row or not row[0]:
                raise StepFailed(f"Index {s.index_name} is missing or invalid.")
            return {"index": s.index_name, "valid": True}

        def compare(c: RunContext) -> dict[str, Any]:
            s = self._suggestion(c.params)
            result = measure_improvement(s, _open(c))
            c.state["improvement"] = result
            if result["status"] == "measured":
                from dbops.services import index_suggestion_verify

                index_suggestion_verify(suggestion=s)
            else:
                c.log(
                    "No calls of the statement since the index was built yet: measure "
                    "again from the change page once the application has run it.\n"
                )
            return result

        return [
            StepSpec("The index is valid", valid),
            StepSpec("Mean time before and after", compare),
        ]

    def rollback(self, ctx):
        def drop(c: RunContext) -> dict[str, Any]:
            from dbops.analysis import drop_index_sql

            s = self._suggestion(c.params)
            if not c.state.get("created"):
                return {"dropped": False}
            statement = drop_index_sql(s.schema, s.index_name)
            c.log(statement.as_string(_open(c)) + "\n")
            _open(c).execute(statement)
            return {"dropped": s.index_name}

        return [StepSpec("Drop the index", drop)]

    def cleanup(self, ctx):
        _close(ctx)
