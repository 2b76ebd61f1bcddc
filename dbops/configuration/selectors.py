"""Reads for the configuration pages: history and diff per target, pending restarts,
and the export of non-default settings as a postgresql.conf snippet."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from psycopg.rows import dict_row

from changes.models import Approval
from dbops import sqlfiles
from dbops.configuration.models import ConfigurationChange, ConfigurationChangeSet
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget

HISTORY_PAGE = 25


@dataclass
class Remote:
    data: Any = None
    error: str = ""


def _read(target: DatabaseTarget, name: str) -> Remote:
    try:
        with connect(target) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sqlfiles.load(name))
            return Remote(data=list(cur.fetchall()))
    except TargetUnavailable as exc:
        return Remote(error=exc.message)
    except psycopg.Error as exc:
        return Remote(error=f"Reading the settings of “{target.name}” failed: {query_failure(exc)}")


def pending_restart(target: DatabaseTarget) -> Remote:
    """Settings changed in the files that wait for a restart, as the server says now."""
    return _read(target, "config_pending_restart")


def history(target: DatabaseTarget, *, before: int | None = None) -> tuple[list, int | None]:
    """The target's sets, newest first, a page at a time (keyset on the id): who asked,
    who approved, the change, and each entry's before and after."""
    qs: QuerySet[ConfigurationChangeSet] = (
        ConfigurationChangeSet.objects.filter(target=target)
        .select_related("change", "change__requester", "proposed_by", "run")
        .prefetch_related(
            Prefetch("entries", queryset=ConfigurationChange.objects.order_by("position")),
            Prefetch(
                "change__approvals",
                queryset=Approval.objects.select_related("decided_by").order_by("pk"),
            ),
        )
        .order_by("-pk")
    )
    if before:
        qs = qs.filter(pk__lt=before)
    rows = list(qs[: HISTORY_PAGE + 1])
    more = rows[HISTORY_PAGE].pk if len(rows) > HISTORY_PAGE else None
    rows = rows[:HISTORY_PAGE]
    return rows, (rows[-1].pk if more else None)


def change_set_detail(pk: int) -> ConfigurationChangeSet | None:
    return (
        ConfigurationChangeSet.objects.select_related(
            "target", "target__component", "change", "change__requester", "proposed_by", "run"
        )
        .prefetch_related(
            Prefetch("entries", queryset=ConfigurationChange.objects.order_by("position")),
            Prefetch(
                "change__approvals",
                queryset=Approval.objects.select_related("decided_by").order_by("pk"),
            ),
        )
        .filter(pk=pk)
        .first()
    )


def _conf_value(row: dict[str, Any]) -> str:
    value = str(row["value"])
    if row["vartype"] in ("integer", "real", "bool") and " " not in value:
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def conf_snippet(target: DatabaseTarget) -> tuple[Iterator[str] | None, str]:
    """The lines of a postgresql.conf snippet of every non-default setting, or why not.
    Values in the server's display form (units included), quoted as the file needs."""
    remote = _read(target, "config_nondefault")
    if remote.error:
        return None, remote.error
    rows = remote.data

    def lines() -> Iterator[str]:
        yield (
            f"# Non-default settings of {target.name} ({target.address}), exported by the "
            f"Change & Maintenance Portal at {timezone.now():%Y-%m-%d %H:%M:%S} UTC.\n"
        )
        yield "# Each line names where the value comes from now.\n\n"
        for row in rows:
            where = row["source"]
            if row["sourcefile"]:
                where += f": {row['sourcefile'].rsplit('/', 1)[-1]}"
            yield f"{row['name']} = {_conf_value(row)}\t# {where}\n"

    return lines(), ""
