"""VACUUM, ANALYZE and REINDEX of chosen tables (seed: DB_MAINTENANCE_PROCEDURES).

Each run: pre-checks DISK_SPACE, CONNECTIONS and LOCKS (measured value and threshold)
and a per-target advisory lock, stakeholders notified, per-table work on an autocommit
connection with lock and statement timeouts, then verification from the statistics.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from django import forms
from psycopg import sql

from dbops.models import DatabaseTarget
from dbops.procedures.checks import (
    check_connections,
    check_locks,
    check_target_lock,
    make_disk_check,
)
from dbops.procedures.common import (
    Table,
    TableMaintenanceForm,
    TargetQueue,
    after,
    baseline,
    close_conn,
    fetch,
    flush_and_read,
    jsonable,
    notify_stakeholders,
    open_conn,
    processed,
    resolve_tables,
    run_each,
    tables_params,
)
from maintenance.models import ProcedureRun
from maintenance.procedures import register
from maintenance.procedures.base import Figure, Procedure, RunContext, StepFailed, StepSpec

MB = 1024 * 1024


def progress_figures(result: dict[str, Any]) -> list[Figure]:
    """The phases a long statement went through, from pg_stat_progress_*."""
    log = result.get("progress_log") or []
    if not log:
        return []
    return [
        Figure(
            "Progress as observed",
            ["Table", "Phase", "Done (%)", "After (s)"],
            [[r["table"], r["phase"], r["percent"], r["seconds"]] for r in log],
        )
    ]


class TableProcedure(TargetQueue, Procedure):
    form_class = TableMaintenanceForm
    rewrites = False
    # Throughput assumed before the target has a past run to learn from.
    default_bytes_per_second = 20 * MB

    def params_from(self, form: TableMaintenanceForm) -> dict[str, Any]:
        # The form maps the chosen quoted names back to (schema, table) pairs.
        return {**form.table_params(), **self.options(form.cleaned_data)}

    def options(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        return {}

    def summary(self, params: dict[str, Any]) -> str:
        target = DatabaseTarget.objects.filter(pk=params.get("target")).first()
        name = target.name if target else "(missing target)"
        return f"{self.verb(params)} on {name}: {self._which(params)}"

    @staticmethod
    def _which(params: dict[str, Any]) -> str:
        tables = [f"{s}.{n}" for s, n in params.get("tables") or []]
        if tables:
            return ", ".join(tables)
        return f"every table over {params.get('dead_ratio_min')}% dead tuples"

    def verb(self, params: dict[str, Any]) -> str:
        return self.label

    def details(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        target = DatabaseTarget.objects.filter(pk=params.get("target")).first()
        rows = [
            ("Target", target.name if target else "(missing)"),
            ("Tables", self._which(params)),
            ("Statement", self.verb(params)),
            ("Expected duration", f"up to {self.max_minutes(params)} min"),
        ]
        if params.get("disk_override_reason"):
            rows.append(("Disk check overridden because", params["disk_override_reason"]))
        return rows

    def precheck_names(self, params: dict[str, Any]) -> list[str]:
        return ["Per-target lock", "DISK_SPACE", "CONNECTIONS", "LOCKS"]

    def _bytes_per_second(self, params: dict[str, Any]) -> float:
        """Learned from this target's last successful runs of this kind."""
        runs = ProcedureRun.objects.filter(
            procedure__kind=self.kind,
            status=ProcedureRun.Status.SUCCEEDED,
            procedure__params__target=params.get("target"),
        ).order_by("-finished_at")[:10]
        rates = []
        for run in runs:
            timings = run.result.get("timings") or {}
            sizes = run.result.get("est_bytes") or {}
            seconds = sum(float(timings.get(t) or 0) for t in timings)
            size = sum(int(sizes.get(t) or 0) for t in timings)
            if seconds > 0 and size > 0:
                rates.append(size / seconds)
        return statistics.median(rates) if rates else self.default_bytes_per_second

    def max_minutes(self, params: dict[str, Any]) -> int:
        """From the tables' size and the target's past runs, with a margin of half again
        and a minute for the checks."""
        size = int(params.get("estimated_bytes") or 0)
        seconds = size / max(self._bytes_per_second(params), 1.0)
        return max(1, math.ceil(1.5 * seconds / 60) + 1)

    def prechecks(self, ctx: RunContext) -> list[StepSpec]:
        return [
            StepSpec("Per-target lock", check_target_lock),
            StepSpec("DISK_SPACE", make_disk_check(self.rewrites)),
            StepSpec("CONNECTIONS", check_connections),
            StepSpec("LOCKS", check_locks),
        ]

    def figures(self, result: dict[str, Any]) -> list[Figure]:
        return self.comparison_figures(result) + progress_figures(result)

    def comparison_figures(self, result: dict[str, Any]) -> list[Figure]:
        rows = result.get("comparison") or []
        if not rows:
            return []
        return [
            Figure(
                "Verification: statistics before and after",
                ["Table", "Dead tuples before", "Dead tuples after", "Last vacuum", "Last analyze"],
                [
                    [
                        r.get("table"),
                        r.get("dead_before"),
                        r.get("dead_after"),
                        r.get("last_vacuum"),
                        r.get("last_analyze"),
                    ]
                    for r in rows
                ],
            )
        ]

    def cleanup(self, ctx: RunContext) -> None:
        close_conn(ctx)


@register
class Vacuum(TableProcedure):
    kind = "db_vacuum"
    label = "VACUUM"
    description = "VACUUM the chosen tables (ANALYZE and FULL optional), then verify."

    class form_class(TableMaintenanceForm):
        analyze = forms.BooleanField(label="ANALYZE as well", required=False, initial=True)
        full = forms.BooleanField(
            label="FULL (rewrites the table, takes an exclusive lock)", required=False
        )

    def options(self, cleaned) -> dict[str, Any]:
        return {"analyze": bool(cleaned.get("analyze")), "full": bool(cleaned.get("full"))}

    def impact(self, params) -> str:
        return "HIGH" if params.get("full") else "LOW"

    def requires_downtime(self, params) -> bool:
        # VACUUM FULL holds an ACCESS EXCLUSIVE lock: the tables are unusable meanwhile.
        return bool(params.get("full"))

    def _bytes_per_second(self, params) -> float:
        base = super()._bytes_per_second(params)
        return base / 2 if params.get("full") else base

    def verb(self, params) -> str:
        opts = [o.upper() for o in ("full", "analyze") if params.get(o)]
        return f"VACUUM ({', '.join(opts)})" if opts else "VACUUM"

    def prechecks(self, ctx):
        checks = super().prechecks(ctx)
        checks[1] = StepSpec("DISK_SPACE", make_disk_check(bool(ctx.params.get("full"))))
        return checks

    def statement(self, params):
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
            StepSpec("Record the statistics before", baseline),
            StepSpec("Notify stakeholders", notify_stakeholders),
            StepSpec(
                "VACUUM each table",
                lambda c: run_each(c, resolve_tables(c, open_conn(c)), build, "VACUUM"),
            ),
        ]

    def verify(self, ctx):
        def verify_tables(c: RunContext) -> dict[str, Any]:
            tables = processed(c)
            after_stats = jsonable(flush_and_read(c, tables))
            started = c.state["started_at"]
            rows, problems = [], []
            for t in tables:
                before, now = c.state["before"].get(t.label, {}), after_stats.get(t.label, {})
                vacuumed = max(
                    filter(None, [now.get("last_vacuum"), now.get("last_autovacuum")]), default=None
                )
                rows.append(
                    {
                        "table": t.label,
                        "dead_before": before.get("dead"),
                        "dead_after": now.get("dead"),
                        "last_vacuum": vacuumed,
                        "last_analyze": now.get("last_analyze"),
                    }
                )
                if not after(vacuumed, started):
                    problems.append(f"{t.label}: last_vacuum is not after the run started")
                if c.params.get("analyze") and not after(now.get("last_analyze"), started):
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
class Analyze(TableProcedure):
    kind = "db_analyze"
    label = "ANALYZE"
    description = "ANALYZE the chosen tables, then verify last_analyze."
    default_impact = "LOW"
    # ANALYZE samples a fixed number of rows: fast on large tables too.
    default_bytes_per_second = 200 * MB

    def steps(self, ctx):
        return [
            StepSpec("Record the statistics before", baseline),
            StepSpec("Notify stakeholders", notify_stakeholders),
            StepSpec(
                "ANALYZE each table",
                lambda c: run_each(
                    c,
                    resolve_tables(c, open_conn(c)),
                    lambda t: sql.SQL("ANALYZE {}").format(t.identifier),
                    "ANALYZE",
                ),
            ),
        ]

    def verify(self, ctx):
        def verify_tables(c: RunContext) -> dict[str, Any]:
            tables = processed(c)
            after_stats = jsonable(flush_and_read(c, tables))
            rows = [
                {"table": t.label, "last_analyze": after_stats.get(t.label, {}).get("last_analyze")}
                for t in tables
            ]
            late = [r["table"] for r in rows if not after(r["last_analyze"], c.state["started_at"])]
            c.state["comparison"] = rows
            if late:
                raise StepFailed(
                    f"Verification failed: not analysed: {', '.join(late)}", {"comparison": rows}
                )
            return {"comparison": rows}

        return [StepSpec("Statistics show the tables analysed", verify_tables)]


@register
class Reindex(TableProcedure):
    kind = "db_reindex"
    label = "REINDEX"
    description = "REINDEX the chosen tables' indexes (CONCURRENTLY by default)."
    rewrites = True
    default_bytes_per_second = 10 * MB

    class form_class(TableMaintenanceForm):
        concurrently = forms.BooleanField(
            label="CONCURRENTLY (no long write lock)", required=False, initial=True
        )

    def options(self, cleaned) -> dict[str, Any]:
        return {"concurrently": bool(cleaned.get("concurrently"))}

    def impact(self, params) -> str:
        return "LOW" if params.get("concurrently") else "HIGH"

    def requires_downtime(self, params) -> bool:
        # Without CONCURRENTLY writes to the table wait until its indexes are rebuilt.
        return not params.get("concurrently")

    def verb(self, params) -> str:
        return "REINDEX CONCURRENTLY" if params.get("concurrently") else "REINDEX"

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
                lambda c: run_each(c, resolve_tables(c, open_conn(c)), build, "REINDEX"),
            ),
        ]

    @staticmethod
    def _indexes_before(ctx: RunContext) -> dict[str, Any]:
        conn = open_conn(ctx)
        tables = resolve_tables(ctx, conn)
        rows = jsonable(fetch(conn, "proc_indexes", tables_params(tables)))
        ctx.state["indexes_before"] = rows
        return {"indexes": len(rows)}

    def verify(self, ctx):
        def valid(c: RunContext) -> dict[str, Any]:
            conn = open_conn(c)
            tables = [Table(*p) for p in c.state["resolved"]]
            rows = jsonable(fetch(conn, "proc_indexes", tables_params(tables)))
            c.state["indexes_after"] = rows
            invalid = [r["index_name"] for r in rows if not r["valid"]]
            if invalid:
                raise StepFailed(f"Invalid indexes after REINDEX: {', '.join(invalid)}")
            return {"indexes": len(rows), "invalid": 0}

        return [StepSpec("Every index is valid", valid)]

    def comparison_figures(self, result: dict[str, Any]) -> list[Figure]:
        after_rows = result.get("indexes_after") or []
        if not after_rows:
            return []
        return [
            Figure(
                "Verification: indexes after REINDEX",
                ["Index", "Valid"],
                [[r.get("index_name"), r.get("valid")] for r in after_rows],
            )
        ]
