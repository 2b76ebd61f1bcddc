"""A run's own connection to its target, and the per-target advisory lock.

The connection carries no session options (no -c statement_timeout): what pg_settings
shows on it is what the server's configuration gives any new session, which is what a
configuration change verifies. The lock key is the one the VACUUM family uses, so a
configuration change, a tuning run and table maintenance never overlap on a target.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

from dbops.connections import TargetUnavailable, connect
from dbops.models import DatabaseTarget
from dbops.procedures.common import ADVISORY_BASE
from maintenance.procedures.base import RunContext, StepFailed

CONN = "config_conn"
MANAGER = "config_conn_manager"


def target_of(ctx: RunContext) -> DatabaseTarget:
    target = DatabaseTarget.objects.filter(pk=ctx.params.get("target")).first()
    if target is None:
        raise StepFailed("The database target no longer exists.")
    return target


def open_conn(ctx: RunContext) -> psycopg.Connection:
    conn = ctx.state.get(CONN)
    if conn is not None and not conn.closed and not conn.broken:
        return conn
    close(ctx)
    try:
        manager = connect(
            target_of(ctx), autocommit=True, statement_timeout_ms=None, lock_timeout_ms=None
        )
        conn = manager.__enter__()
    except TargetUnavailable as exc:
        raise StepFailed(exc.message) from None
    ctx.state[CONN], ctx.state[MANAGER] = conn, manager
    return conn


def close(ctx: RunContext) -> None:
    manager = ctx.state.pop(MANAGER, None)
    ctx.state.pop(CONN, None)
    if manager is not None:
        # A connection broken by a restart must not hide the run's real outcome.
        with contextlib.suppress(Exception):
            manager.__exit__(None, None, None)


def lock(ctx: RunContext) -> dict[str, Any]:
    """Pre-check: the per-target advisory lock, held for the run's session."""
    target = target_of(ctx)
    got = (
        open_conn(ctx)
        .execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_BASE + target.pk])
        .fetchone()[0]
    )
    result = {
        "check": "TARGET_LOCK",
        "passed": bool(got),
        "value": "free" if got else "held",
        "threshold": "free",
        "message": "No other maintenance run is using this target."
        if got
        else f"Another maintenance run is already working on {target.name}; this one was "
        "refused. Try again when it has finished.",
    }
    if not got:
        raise StepFailed(f"TARGET_LOCK: {result['message']}", result)
    return result
