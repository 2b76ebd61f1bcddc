"""What every database procedure shares: the run's autocommit connection, the tables it
may touch (checked against the catalog), the pre-checks, per-table work with lock
retries and live progress, and the parameter form that offers only targets the user may
use."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django import forms
from django.conf import settings
from psycopg import sql
from psycopg.rows import dict_row

from changes.models import ChangeRequest
from dbops import access, sqlfiles
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget
from maintenance.procedures.base import ParamsRefused, ProcedureForm, RunContext, StepFailed
from maintenance.selectors import change_slot, window_stakeholders
from portal.notifications import notify

LOCK_TIMEOUT = "5s"
LOCK_RETRIES = (1, 2, 4)  # seconds of backoff before giving a table up
OLD_TRANSACTION_SECONDS = 5 * 60
DISK_FACTOR = 1.2
# Per-target advisory lock key: "portal" in ASCII plus the target id, so two runs on the
# same target exclude each other while runs on different targets do not.
ADVISORY_BASE = 0x706F7274616C << 16


# --- a queue per database target (DESIGN section 5) ------------------------------------
#
# Celery on Redis cannot subscribe a worker to queues by pattern, and a queue named after
# each target would need every worker told of every new target (add_consumer broadcasts,
# lost by a worker that is down). So the targets hash onto a fixed set of queues,
# ``dbops.target.<id mod DBOPS_TARGET_QUEUES>``, known to every worker at start: a worker
# per queue (``celery -A portal worker -Q dbops.target.3``) gives each its own slots, so a
# long VACUUM on one target never holds up another target's procedure; runportal's one
# worker consumes all of them. Targets whose ids differ by a multiple of the setting
# share a queue: set it to at least the number of targets.
TARGET_QUEUE_PREFIX = "dbops.target."


def target_queue(target_id: int | str) -> str:
    return f"{TARGET_QUEUE_PREFIX}{int(target_id) % settings.DBOPS_TARGET_QUEUES}"


def target_queues() -> list[str]:
    return [f"{TARGET_QUEUE_PREFIX}{n}" for n in range(settings.DBOPS_TARGET_QUEUES)]


class TargetQueue:
    """Mixin of the database procedures: their runs go to their target's queue."""

    def queue_for(self, params: dict[str, Any]) -> str:
        target = params.get("target")
        if target in (None, "") or not str(target).isdigit():
            return ""
        return target_queue(target)


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


def fetch(conn: psycopg.Connection, name: str, params: dict | None = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sqlfiles.load(name), params)
        return list(cur.fetchall())


def catalog_tables(target: DatabaseTarget) -> list[dict]:
    with connect(target) as conn:
        return fetch(conn, "proc_tables")


def tables_params(tables: list[Table]) -> dict[str, list[str]]:
    return {"schemas": [t.schema for t in tables], "names": [t.name for t in tables]}


def jsonable(value: Any) -> Any:
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    )


def after(moment: str | None, start: str) -> bool:
    return bool(moment) and datetime.fromisoformat(moment) >= datetime.fromisoformat(start)


# --- the parameter form ------------------------------------------------------------------


class TargetForm(ProcedureForm):
    """A form naming a database target: it offers, and accepts, only targets the user may
    use (the rule of the target pages), and connects to nothing before that check."""

    target = forms.ModelChoiceField(
        label="Database target",
        queryset=DatabaseTarget.objects.none(),
        widget=forms.Select(attrs={"data-reload-param": "target"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        usable = (
            access.targets_visible_to(self.user).filter(is_active=True)
            if self.user is not None
            else DatabaseTarget.objects.none()
        )
        self.fields["target"].queryset = usable
        self.target = None
        raw = self.data.get("target") if self.is_bound else self.initial.get("target")
        if raw in (None, ""):
            return
        if not str(raw).isdigit():
            return  # the field refuses it with a clear message
        self.target = usable.filter(pk=int(raw)).first()
        if self.target is None and DatabaseTarget.objects.filter(pk=int(raw)).exists():
            self.refusal = ParamsRefused("You may not use that database target.", target=int(raw))


class TableMaintenanceForm(TargetForm):
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
        self.catalog_error = ""
        if self.target is not None:
            try:
                rows = catalog_tables(self.target)
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
        if self.catalog_error:
            raise forms.ValidationError(self.catalog_error)
        if not cleaned.get("tables") and cleaned.get("dead_ratio_min") is None:
            raise forms.ValidationError(
                "Choose tables from the target's catalog, or give a dead-tuple ratio."
            )
        return cleaned

    def table_params(self) -> dict[str, Any]:
        cleaned = self.cleaned_data
        chosen = [self.catalog[q] for q in cleaned.get("tables") or []]
        ratio = cleaned.get("dead_ratio_min")
        if chosen:
            estimated = sum(int(row.get("est_bytes") or 0) for row in chosen)
        else:
            estimated = sum(
                int(row.get("est_bytes") or 0)
                for row in self.catalog.values()
                if ratio is not None and float(row["dead_percent"]) > float(ratio)
            )
        return {
            "target": cleaned["target"].pk,
            "tables": [[row["schema"], row["name"]] for row in chosen],
            "dead_ratio_min": float(ratio) if ratio is not None else None,
            "disk_override_reason": cleaned.get("disk_override_reason", "").strip(),
            "estimated_bytes": estimated,
        }


# --- the run's connection ------------------------------------------------------------------


def target_of(ctx: RunContext) -> DatabaseTarget:
    target = DatabaseTarget.objects.filter(pk=ctx.params.get("target")).first()
    if target is None:
        raise StepFailed("The database target no longer exists.")
    return target


def open_conn(ctx: RunContext) -> psycopg.Connection:
    """The run's one autocommit connection: VACUUM and CONCURRENTLY refuse transaction
    blocks, and the advisory lock lives as long as this session."""
    conn = ctx.state.get("conn")
    if conn is None or conn.closed:
        target = target_of(ctx)
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
            sql.SQL("SET statement_timeout = {}").format(
                sql.Literal(settings.PROCEDURE_TIME_LIMIT * 1000)
            )
        )
    return conn


def close_conn(ctx: RunContext) -> None:
    manager = ctx.state.pop("conn_manager", None)
    ctx.state.pop("conn", None)
    if manager is not None:
        # Closing a broken connection must not hide the run's real outcome.
        with contextlib.suppress(Exception):
            manager.__exit__(None, None, None)


def resolve_tables(ctx: RunContext, conn: psycopg.Connection) -> list[Table]:
    """The tables to work on, each checked against the catalog again now."""
    if "resolved" in ctx.state:
        return [Table(*pair) for pair in ctx.state["resolved"]]
    catalog = {(r["schema"], r["name"]): r for r in fetch(conn, "proc_tables")}
    wanted = [tuple(pair) for pair in ctx.params.get("tables") or []]
    missing = [f"{s}.{n}" for s, n in wanted if (s, n) not in catalog]
    if missing:
        raise StepFailed(f"Not in the target's catalog (refused): {', '.join(missing)}.")
    if not wanted and ctx.params.get("dead_ratio_min") is not None:
        ratio = float(ctx.params["dead_ratio_min"])
        wanted = [key for key, row in catalog.items() if float(row["dead_percent"]) > ratio]
    tables = [Table(s, n) for s, n in wanted]
    ctx.state["resolved"] = [[t.schema, t.name] for t in tables]
    ctx.state["est_bytes"] = {
        f"{s}.{n}": int(catalog[(s, n)].get("est_bytes") or 0) for s, n in wanted
    }
    return tables


def processed(ctx: RunContext) -> list[Table]:
    """The tables the run actually worked on (skipped ones are left out)."""
    done = set(ctx.state.get("done", []))
    return [t for t in (Table(*p) for p in ctx.state["resolved"]) if t.label in done]


def table_stats(conn: psycopg.Connection, tables: list[Table]) -> dict[str, dict]:
    rows = fetch(conn, "proc_table_stats", tables_params(tables))
    return {f"{r['schema']}.{r['name']}": r for r in rows}


# --- live progress and stopping ---------------------------------------------------------------


class ProgressWatcher:
    """Polls the progress views for the working backend on a second connection, and
    cancels the statement (``pg_cancel_backend``) when the run is asked to stop."""

    def __init__(self, ctx: RunContext, pid: int, label: str):
        self.ctx, self.pid, self.label = ctx, pid, label
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.last_phase = None
        self.last_percent = -100.0
        self.started = time.monotonic()
        self.cancelled = False

    def __enter__(self):
        self.ctx.started(backend_pid=self.pid)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        try:
            with connect(target_of(self.ctx)) as conn:
                while not self.stop.wait(0.5):
                    if self.ctx.stop.is_set() and not self.cancelled:
                        conn.execute("SELECT pg_cancel_backend(%s)", [self.pid])
                        self.cancelled = True
                        self.ctx.log(f"  {self.label}: cancelled ({self.ctx.stop_message()})\n")
                    for row in fetch(conn, "proc_progress", {"pid": self.pid}):
                        if row["phase"] != self.last_phase:
                            self.last_phase = row["phase"]
                            self.ctx.log(f"  {self.label}: {row['kind']} {row['phase']}\n")
                        total, done = row["total"] or 0, row["done"] or 0
                        self._record(row["phase"], 100.0 * done / total if total else None)
                        self.ctx.set_progress_detail(
                            {
                                "label": self.label,
                                "kind": row["kind"],
                                "phase": row["phase"],
                                "done": done,
                                "total": total,
                                "unit": "blocks",
                            }
                        )
                        if total:
                            self.ctx.set_progress(100 * done / total)
        except Exception:  # progress is a nicety; the work goes on without it
            return

    def _record(self, phase: str, percent: float | None) -> None:
        """Keep the progress seen (each phase, and every 5 points), for the run's record:
        a long statement shows later what it went through and how fast."""
        log = self.ctx.state.setdefault("progress_log", [])
        changed = not log or log[-1]["phase"] != phase or log[-1]["table"] != self.label
        if not changed and (percent is None or percent < self.last_percent + 5):
            return
        self.last_percent = percent if percent is not None else self.last_percent
        log.append(
            {
                "table": self.label,
                "phase": phase,
                "percent": round(percent, 1) if percent is not None else None,
                "seconds": round(time.monotonic() - self.started, 1),
            }
        )


def run_each(ctx: RunContext, tables: list[Table], build, verb: str) -> dict[str, Any]:
    """Run a statement per table, retrying lock timeouts with backoff, then skipping."""
    conn = open_conn(ctx)
    done, skipped, timings = [], [], {}
    for n, table in enumerate(tables, start=1):
        ctx.check_stop()
        statement = build(table)
        text = statement.as_string(conn)
        for attempt, pause in enumerate((*LOCK_RETRIES, None), start=1):
            ctx.log(f"{text}\n")
            started = time.monotonic()
            try:
                with ProgressWatcher(ctx, conn.info.backend_pid, table.label) as watcher:
                    conn.execute(statement)
            except psycopg.errors.QueryCanceled:
                if watcher.cancelled:
                    ctx.check_stop()
                raise StepFailed(
                    f"{verb} {table.label} was cancelled (statement timeout)."
                ) from None
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
            seconds = time.monotonic() - started
            ctx.log(f"  done in {seconds:.2f} s\n")
            done.append(table.label)
            timings[table.label] = round(seconds, 3)
            break
        ctx.set_progress(100 * n / max(len(tables), 1))
    ctx.state["done"], ctx.state["skipped"] = done, skipped
    ctx.state["timings"] = timings
    if not done and tables:
        raise StepFailed(f"No table could be processed: {', '.join(skipped)} stayed locked.")
    return {"done": done, "skipped": skipped}


def notify_stakeholders(ctx: RunContext) -> dict[str, Any]:
    """Seed step 1: notify stakeholders before the work starts."""
    change = ChangeRequest.objects.get(pk=ctx.change_id)
    slot = change_slot(change)
    users = window_stakeholders(slot.window).users if slot else [change.requester]
    target = target_of(ctx)
    tables = ", ".join(f"{s}.{n}" for s, n in ctx.state.get("resolved", []))
    notify(
        recipients=users,
        subject=f"Starting database maintenance on {target.name} for {change.public_id}",
        body=f"Tables: {tables or 'none'}",
        url=change.get_absolute_url(),
        dedup_key=f"run:{ctx.run_id}:db-start",
    )
    return {"notified": len(users)}


def baseline(ctx: RunContext) -> dict[str, Any]:
    conn = open_conn(ctx)
    tables = resolve_tables(ctx, conn)
    ctx.state["started_at"] = conn.execute("SELECT now()").fetchone()[0].isoformat()
    ctx.state["before"] = jsonable(table_stats(conn, tables))
    return {"tables": [t.label for t in tables]}


def flush_and_read(ctx: RunContext, tables: list[Table]) -> dict[str, dict]:
    conn = open_conn(ctx)
    # The statistics of this session's work reach the shared stats only when flushed.
    conn.execute("SELECT pg_stat_force_next_flush()")
    with connect(target_of(ctx)) as reader:
        reader.execute("SELECT pg_stat_clear_snapshot()")
        return table_stats(reader, tables)
