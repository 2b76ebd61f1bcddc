"""Reads for the dbops pages: a bounded number of portal queries per page, and the
target's own statistics read over one connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db.models import QuerySet

from dbops import access, stats
from dbops.advisor import model as analysis
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget, QueryStatsSnapshot, StatementStat


def target_list(*, user) -> QuerySet[DatabaseTarget]:
    return (
        access.targets_visible_to(user)
        .select_related("component")
        .prefetch_related("tenants")
        .order_by("name")
    )


def target_for_user(*, user, pk: int) -> DatabaseTarget | None:
    return (
        access.targets_visible_to(user)
        .select_related("component")
        .prefetch_related("tenants")
        .filter(pk=pk)
        .first()
    )


@dataclass
class Remote:
    """What a page read from the target, or why it could not."""

    data: Any = None
    error: str = ""


def _read(target: DatabaseTarget, reader) -> Remote:
    try:
        with connect(target) as conn:
            return Remote(data=reader(conn))
    except TargetUnavailable as exc:
        return Remote(error=exc.message)
    except psycopg.Error as exc:
        return Remote(
            error=f"Reading the statistics of “{target.name}” failed: {query_failure(exc)}"
        )


def target_health(*, target: DatabaseTarget) -> Remote:
    return _read(target, stats.health)


@dataclass
class Trend:
    """The latest stored snapshot, for comparing the live numbers against it."""

    snapshot: QueryStatsSnapshot | None = None
    mean_by_queryid: dict[int, float] = field(default_factory=dict)


def target_queries(*, target: DatabaseTarget, threshold_ms: float) -> tuple[Remote, Trend]:
    remote = _read(target, lambda conn: stats.query_performance(conn, threshold_ms=threshold_ms))
    trend = Trend()
    trend.snapshot = (
        QueryStatsSnapshot.objects.filter(target=target, statements_available=True)
        .order_by("-taken_at", "-pk")
        .first()
    )
    if trend.snapshot is not None and remote.data is not None and remote.data.top:
        trend.mean_by_queryid = dict(
            StatementStat.objects.filter(
                snapshot=trend.snapshot, queryid__in=[s.queryid for s in remote.data.top]
            ).values_list("queryid", "mean_exec_time")
        )
    return remote, trend


def suggestion_find(
    *, target: DatabaseTarget, queryid: int, schema: str, table: str, columns: tuple[str, ...]
) -> Remote:
    """The suggestion the query page showed (``data``, None if it no longer holds),
    analysed and proven afresh: a posted form names it, only the target vouches for it."""

    def read(conn: psycopg.Connection) -> list[analysis.Suggestion]:
        status = stats.statements_status(conn)
        if not status.available:
            return []
        statement = stats.statement(conn, status, queryid)
        if statement is None:
            return []
        return stats.advice(conn, [statement]).suggestions

    remote = _read(target, read)
    wanted = (schema, table, tuple(columns))
    remote.data = next(
        (s for s in remote.data or [] if (s.schema, s.table, s.columns) == wanted), None
    )
    return remote


def statement_text(*, target: DatabaseTarget, queryid: int) -> Remote:
    """A pg_stat_statements statement's text (``data``; None when it is not there)."""

    def read(conn: psycopg.Connection) -> str | None:
        status = stats.statements_status(conn)
        found = stats.statement(conn, status, queryid) if status.available else None
        return found.query if found else None

    return _read(target, read)
