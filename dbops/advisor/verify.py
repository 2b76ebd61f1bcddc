"""After CREATE INDEX CONCURRENTLY: does the statement's plan use the new index, and did
the statement get slower? The CREATE INDEX procedure's verification calls
``index_verification``; a failure offers the change's backout (DROP INDEX CONCURRENTLY)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from dbops.advisor import hypo
from dbops.advisor.ddl import drop_index_sql


@dataclass(frozen=True)
class IndexVerification:
    ok: bool
    uses_index: bool | None  # None: the plan could not be read
    slower: bool | None  # None: no calls measured since the baseline yet
    plan_indexes: tuple[str, ...]
    message: str
    backout_sql: str

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "uses_index": self.uses_index,
            "slower": self.slower,
            "plan_indexes": list(self.plan_indexes),
            "message": self.message,
            "backout_sql": self.backout_sql,
        }


def plan_uses_index(conn: psycopg.Connection, query: str, index_name: str) -> tuple[bool, Plan]:
    """Whether the statement's generic plan reads the index (by name)."""
    plan = hypo.generic_plan(conn, query)
    return index_name in plan.indexes, plan


Plan = hypo.Plan


def index_verification(
    conn: psycopg.Connection,
    *,
    query: str,
    schema: str,
    index_name: str,
    mean_before_ms: float | None,
    mean_after_ms: float | None,
) -> IndexVerification:
    """Fails when the plan does not use the index or the measured mean time grew.

    ``mean_after_ms`` is None while the statement has not run since the index was built:
    then only the plan is judged."""
    backout = drop_index_sql(schema, index_name).as_string(conn)
    try:
        uses, plan = plan_uses_index(conn, query, index_name)
        indexes = tuple(sorted(plan.indexes))
    except hypo.ExplainFailed as exc:
        uses, indexes = None, ()
        plan_message = f"The plan could not be read ({exc.message})."
    else:
        reads = ", ".join(indexes) or "no index"
        plan_message = (
            f"The plan uses {index_name}."
            if uses
            else f"The plan does not use {index_name} (it reads {reads})."
        )
    slower = None
    if mean_before_ms is not None and mean_after_ms is not None:
        slower = mean_after_ms > mean_before_ms
    parts = [plan_message]
    if slower is True:
        parts.append(
            f"The statement got slower: {mean_before_ms:.2f} ms before, "
            f"{mean_after_ms:.2f} ms after."
        )
    elif slower is False:
        parts.append(f"Mean time {mean_before_ms:.2f} ms before, {mean_after_ms:.2f} ms after.")
    ok = uses is not False and slower is not True
    if not ok:
        parts.append(f"Back out with: {backout};")
    return IndexVerification(
        ok=ok,
        uses_index=uses,
        slower=slower,
        plan_indexes=indexes,
        message=" ".join(parts),
        backout_sql=backout,
    )
