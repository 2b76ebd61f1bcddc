"""CREATE INDEX CONCURRENTLY for a proposed index suggestion, with the statement's mean
time before and after."""

from __future__ import annotations

from typing import Any

import psycopg
from django import forms

from dbops import analysis, stats
from dbops.advisor.ddl import create_index_sql
from dbops.advisor.verify import index_verification
from dbops.connections import query_failure
from dbops.models import IndexSuggestion
from dbops.procedures.checks import (
    check_connections,
    check_locks,
    check_target_lock,
    make_disk_check,
)
from dbops.procedures.common import (
    ProgressWatcher,
    TargetQueue,
    close_conn,
    fetch,
    notify_stakeholders,
    open_conn,
)
from dbops.services import index_suggestion_record
from maintenance.procedures import register
from maintenance.procedures.base import (
    Figure,
    Procedure,
    ProcedureForm,
    RunContext,
    StepFailed,
    StepSpec,
)


class CreateIndexForm(ProcedureForm):
    suggestion = forms.IntegerField(label="Index suggestion", min_value=1)

    def clean_suggestion(self) -> int:
        pk = self.cleaned_data["suggestion"]
        if not IndexSuggestion.objects.filter(pk=pk).exists():
            raise forms.ValidationError("No such index suggestion.")
        return pk


def _suggestion(params) -> IndexSuggestion:
    suggestion = (
        IndexSuggestion.objects.select_related("target").filter(pk=params.get("suggestion")).first()
    )
    if suggestion is None:
        raise StepFailed("The index suggestion no longer exists.")
    return suggestion


@register
class CreateIndex(TargetQueue, Procedure):
    kind = "db_create_index"
    label = "CREATE INDEX CONCURRENTLY"
    description = "Builds a proposed index without blocking writes, then verifies it."
    form_class = CreateIndexForm
    has_rollback = True
    default_impact = "LOW"

    def to_json(self, cleaned):
        suggestion = IndexSuggestion.objects.get(pk=cleaned["suggestion"])
        return {
            "suggestion": suggestion.pk,
            "target": suggestion.target_id,
            "tables": [[suggestion.schema, suggestion.table]],
            "dead_ratio_min": None,
            "disk_override_reason": "",
        }

    def summary(self, params):
        s = IndexSuggestion.objects.filter(pk=params.get("suggestion")).first()
        if s is None:
            return "CREATE INDEX CONCURRENTLY (suggestion missing)"
        return (
            f"CREATE INDEX CONCURRENTLY {s.index_name} ON {s.schema}.{s.table} "
            f"({', '.join(s.columns)})"
        )

    def details(self, params):
        s = IndexSuggestion.objects.select_related("target").filter(pk=params.get("suggestion"))
        s = s.first()
        if s is None:
            return [("Suggestion", "missing")]
        return [
            ("Target", s.target.name),
            ("Statement", s.create_sql),
            ("Backout", s.drop_sql),
            ("Mean time before", f"{s.mean_exec_time_before:.1f} ms"),
        ]

    def precheck_names(self, params):
        return ["Per-target lock", "DISK_SPACE", "CONNECTIONS", "LOCKS"]

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
            s = _suggestion(c.params)
            conn = open_conn(c)
            # What was approved: the advisor's keys (expressions, operator classes), its
            # access method and its partial predicate, not just the column labels.
            statement = create_index_sql(
                s.schema,
                s.table,
                s.keys or s.columns,
                s.index_name,
                method=s.method,
                predicate=s.predicate,
            )
            c.log(statement.as_string(conn) + "\n")
            c.state["created"] = True
            try:
                with ProgressWatcher(c, conn.info.backend_pid, f"{s.schema}.{s.table}"):
                    conn.execute(statement)
            except psycopg.errors.QueryCanceled:
                c.check_stop()
                raise StepFailed("CREATE INDEX was cancelled (statement timeout).") from None
            except psycopg.Error as exc:
                raise StepFailed(f"CREATE INDEX failed: {query_failure(exc)}") from None
            return {"index": s.index_name}

        return [
            StepSpec("Notify stakeholders", notify_stakeholders),
            StepSpec("Build the index concurrently", build),
        ]

    def verify(self, ctx):
        def valid(c: RunContext) -> dict[str, Any]:
            s = _suggestion(c.params)
            rows = fetch(
                open_conn(c), "proc_index_valid", {"schema": s.schema, "name": s.index_name}
            )
            if not rows or not rows[0]["valid"]:
                raise StepFailed(f"Index {s.index_name} is missing or invalid.")
            return {"index": s.index_name, "valid": True}

        def compare(c: RunContext) -> dict[str, Any]:
            s = _suggestion(c.params)
            # Measured once, on the run's own connection; the service only records it.
            result = stats.measure_improvement(s, open_conn(c))
            c.state["improvement"] = result
            if result["status"] == "measured":
                index_suggestion_record(suggestion=s, result=result)
            else:
                c.log(
                    "No calls of the statement since the index was built yet: measure "
                    "again from the change page once the application has run it.\n"
                )
            return result

        def plan(c: RunContext) -> dict[str, Any]:
            """The statement's plan now uses the index, and it did not get slower;
            otherwise verification fails and the backout (DROP INDEX CONCURRENTLY)
            is offered."""
            s = _suggestion(c.params)
            measured = c.state.get("improvement") or {}
            verdict = index_verification(
                open_conn(c),
                query=s.query,
                schema=s.schema,
                index_name=s.index_name,
                mean_before_ms=s.mean_exec_time_before,
                mean_after_ms=measured.get("mean_after_ms"),
            )
            c.state["plan_check"] = verdict.to_json()
            if not verdict.ok:
                raise StepFailed(verdict.message, verdict.to_json())
            return {"plan_uses_index": verdict.uses_index, "message": verdict.message}

        return [
            StepSpec("The index is valid", valid),
            StepSpec("Mean time before and after", compare),
            StepSpec("The plan uses the index and nothing got slower", plan),
        ]

    def figures(self, result):
        measured = result.get("improvement") or {}
        if not measured:
            return []
        return [
            Figure(
                "Verification: statement mean time",
                ["Before (ms)", "After (ms)", "New calls", "Improvement (%)", "Status"],
                [
                    [
                        measured.get("mean_before_ms"),
                        measured.get("mean_after_ms"),
                        measured.get("new_calls"),
                        measured.get("improvement_percent"),
                        measured.get("status"),
                    ]
                ],
            )
        ]

    def rollback(self, ctx):
        def drop(c: RunContext) -> dict[str, Any]:
            s = _suggestion(c.params)
            if not c.state.get("created"):
                return {"dropped": False}
            statement = analysis.drop_index_sql(s.schema, s.index_name)
            c.log(statement.as_string(open_conn(c)) + "\n")
            open_conn(c).execute(statement)
            return {"dropped": s.index_name}

        return [StepSpec("Drop the index", drop)]

    def cleanup(self, ctx):
        close_conn(ctx)
