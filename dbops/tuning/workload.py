"""The declared workload a tuning session judges by: pgbench at a fixed client count,
against a scratch schema of its own on the target (dropped afterwards).

Kinds: a pgbench built-in script (tables from ``pgbench -i`` at a scale), the portal's
sort-heavy script (``count(DISTINCT k)`` over a table of random keys, which sorts and
spills to disk when work_mem is small), or a custom script with its own setup SQL.
The password reaches pgbench through its environment, never its command line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dbops.connections import APPLICATION_NAME, TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget
from dbops.tuning.metrics import Counters, Sample, between, prime_host, read_counters

BUILTINS = ("tpcb-like", "simple-update", "select-only")
KINDS = {
    "builtin": "pgbench built-in script",
    "sort": "Sort-heavy (count DISTINCT over random keys)",
    "custom": "Custom pgbench script",
}
SORT_SCRIPT = "SELECT count(DISTINCT k) FROM sort_rows;\n"
_TPS = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)
_LATENCY = re.compile(r"^latency average = ([0-9.]+) ms", re.MULTILINE)
PGBENCH_TIMEOUT_SLACK = 60


class WorkloadFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Workload:
    kind: str
    schema: str
    clients: int = 2
    builtin: str = "select-only"
    scale: int = 1
    rows: int = 50_000
    script: str = ""
    setup_sql: str = ""

    @classmethod
    def from_params(cls, params: dict[str, Any], schema: str) -> Workload:
        return cls(
            kind=params.get("workload", "builtin"),
            schema=schema,
            clients=int(params.get("clients") or 2),
            builtin=params.get("builtin") or "select-only",
            scale=int(params.get("scale") or 1),
            rows=int(params.get("rows") or 50_000),
            script=params.get("script") or "",
            setup_sql=params.get("setup_sql") or "",
        )

    def describe(self) -> dict[str, Any]:
        data = {"kind": self.kind, "clients": self.clients, "schema": self.schema}
        if self.kind == "builtin":
            data.update(builtin=self.builtin, scale=self.scale)
        elif self.kind == "sort":
            data.update(rows=self.rows, script=SORT_SCRIPT.strip())
        else:
            data.update(script=self.script, setup_sql=self.setup_sql)
        return data


def app_name(workload: Workload) -> str:
    return f"{APPLICATION_NAME}-{workload.schema}"[:63]


def wait_for_exit(conn: psycopg.Connection, workload: Workload, timeout: float = 10.0) -> None:
    """Until pgbench's backends have left pg_stat_activity: a backend reports its
    statistics before it leaves, so the counters read next include its work."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        left = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [app_name(workload)],
        ).fetchone()[0]
        if not left:
            return
        time.sleep(0.01)


def pgbench_binary() -> str:
    path = shutil.which("pgbench")
    if path is None:
        raise WorkloadFailed("pgbench is not installed on the worker (postgresql-client).")
    return path


def _env(target: DatabaseTarget, workload: Workload) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C.UTF-8",
        "PGHOST": target.host,
        "PGPORT": str(target.port),
        "PGUSER": target.user,
        "PGDATABASE": target.database,
        "PGSSLMODE": target.sslmode,
        "PGAPPNAME": app_name(workload),
        "PGCONNECT_TIMEOUT": "5",
        # The schema name is ours (portal_tuning_<run>): no quoting needed in options.
        "PGOPTIONS": f"-c search_path={workload.schema}",
    }
    password = target.get_password()
    if password:
        env["PGPASSWORD"] = password
    return env


def _pgbench(target: DatabaseTarget, workload: Workload, args: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(
            [pgbench_binary(), *args],
            env=_env(target, workload),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise WorkloadFailed(f"pgbench did not finish within {timeout:.0f} s.") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        # The server's own complaint says most; pgbench's summary line comes last.
        server = [line for line in lines if "ERROR:" in line or "FATAL:" in line]
        reason = (server or lines or ["no output"])[0]
        raise WorkloadFailed(f"pgbench failed ({done.returncode}): {reason}")
    return done.stdout


def prepare(target: DatabaseTarget, workload: Workload, *, log) -> dict[str, Any]:
    """Create the scratch schema and what the workload reads."""
    schema = sql.Identifier(workload.schema)
    try:
        with connect(target, statement_timeout_ms=None) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
            conn.execute(sql.SQL("SET search_path = {}").format(schema))
            if workload.kind == "sort":
                conn.execute(
                    "CREATE TABLE sort_rows AS SELECT g AS id, (random() * 1e9)::bigint AS k "
                    "FROM generate_series(1, %s) AS g",
                    [workload.rows],
                )
                conn.execute("ANALYZE sort_rows")
            elif workload.kind == "custom" and workload.setup_sql.strip():
                # Approved with the change; runs with the scratch schema first in the path.
                conn.execute(sql.SQL(workload.setup_sql))  # type: ignore[arg-type]
    except TargetUnavailable as exc:
        raise WorkloadFailed(exc.message) from None
    except psycopg.Error as exc:
        raise WorkloadFailed(f"Preparing the workload failed: {query_failure(exc)}") from None
    if workload.kind == "builtin":
        log(f"pgbench -i -s {workload.scale} (schema {workload.schema})\n")
        _pgbench(
            target,
            workload,
            ["-i", "-s", str(workload.scale), "-q", "--no-vacuum"],
            timeout=600,
        )
    log(f"Workload ready in schema {workload.schema}.\n")
    return workload.describe()


def drop(target: DatabaseTarget, workload: Workload) -> None:
    with connect(target, statement_timeout_ms=None) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(workload.schema))
        )


def run(
    target: DatabaseTarget,
    workload: Workload,
    seconds: int,
    conn: psycopg.Connection,
    *,
    host: bool,
) -> Sample:
    """One sample: pgbench for ``seconds`` at the fixed client count, with the server's
    counters read before and after it on ``conn``."""
    args = ["-n", "-c", str(workload.clients), "-j", str(workload.clients), "-T", str(seconds)]
    if workload.kind == "builtin":
        args += ["-b", workload.builtin]
    with tempfile.NamedTemporaryFile("w", suffix=".sql", encoding="utf-8") as script:
        if workload.kind != "builtin":
            script.write(SORT_SCRIPT if workload.kind == "sort" else workload.script)
            script.flush()
            args += ["-f", script.name]
        if host:
            prime_host()
        before: Counters = read_counters(conn, host=host)
        output = _pgbench(target, workload, args, timeout=seconds + PGBENCH_TIMEOUT_SLACK)
        wait_for_exit(conn, workload)
        after = read_counters(conn, host=host)
    sample = between(before, after, host=host)
    tps, latency = _TPS.search(output), _LATENCY.search(output)
    if tps is None:
        raise WorkloadFailed("pgbench printed no tps figure.")
    sample.tps = float(tps.group(1))
    sample.latency_ms = float(latency.group(1)) if latency else None
    return sample
