"""The pre-checks every database procedure makes (seed: DISK_SPACE, CONNECTIONS, LOCKS),
plus the per-target advisory lock, each recorded with its measured value and threshold."""

from __future__ import annotations

import shutil
from typing import Any

import psycopg

from dbops.procedures.common import (
    ADVISORY_BASE,
    DISK_FACTOR,
    OLD_TRANSACTION_SECONDS,
    RunContext,
    StepFailed,
    fetch,
    jsonable,
    open_conn,
    resolve_tables,
    tables_params,
    target_of,
)


def _check(name: str, ok: bool, value: Any, threshold: Any, message: str) -> dict[str, Any]:
    result = {
        "check": name,
        "passed": ok,
        "value": value,
        "threshold": threshold,
        "message": message,
    }
    if not ok:
        raise StepFailed(f"{name}: {message}", jsonable(result))
    return jsonable(result)


def check_target_lock(ctx: RunContext) -> dict[str, Any]:
    conn = open_conn(ctx)
    key = ADVISORY_BASE + int(ctx.params["target"])
    got = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
    target = target_of(ctx)
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
    conn = open_conn(ctx)
    row = fetch(conn, "proc_connections")[0]
    usable = max(row["max_connections"] - row["reserved"], 1)
    percent = round(100.0 * row["used"] / usable, 1)
    threshold = target_of(ctx).connections_threshold_percent
    return _check(
        "CONNECTIONS",
        percent < threshold,
        f"{row['used']} of {usable} ({percent}%)",
        f"< {threshold}%",
        f"{percent}% of usable connections in use (limit {threshold}%).",
    )


def check_locks(ctx: RunContext) -> dict[str, Any]:
    conn = open_conn(ctx)
    tables = resolve_tables(ctx, conn)
    locks = fetch(conn, "proc_locks", tables_params(tables)) if tables else []
    old = fetch(conn, "proc_old_transactions", {"seconds": OLD_TRANSACTION_SECONDS})
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
    target = target_of(ctx)
    if target.disk_capacity_bytes:
        used = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        return max(
            target.disk_capacity_bytes - used, 0
        ), "configured capacity minus the database size"
    return None, "unknown"


def make_disk_check(needs_space: bool):
    def check_disk(ctx: RunContext) -> dict[str, Any]:
        conn = open_conn(ctx)
        tables = resolve_tables(ctx, conn)
        if not needs_space:
            return _check(
                "DISK_SPACE", True, "not needed", "—", "This operation does not rewrite tables."
            )
        try:
            sizes = fetch(conn, "proc_sizes", tables_params(tables))
        except psycopg.errors.LockNotAvailable:
            raise StepFailed(
                "DISK_SPACE: the tables' size cannot be read, another session "
                "holds a lock on them (see LOCKS)."
            ) from None
        need = int(DISK_FACTOR * sum(int(r["total_bytes"]) for r in sizes))
        ctx.state["table_bytes"] = {f"{r['schema']}.{r['name']}": r["total_bytes"] for r in sizes}
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
