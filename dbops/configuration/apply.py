"""One transaction of configuration on a target (seed: updateConfiguration).

PostgreSQL has no transaction around ALTER SYSTEM (it refuses to run inside a
transaction block), so the portal makes one: snapshot ``pg_settings`` and
``pg_file_settings``, ``ALTER SYSTEM SET`` each entry, check ``pg_file_settings.error``,
``pg_reload_conf()``, verify each value through ``pg_settings``; on any failure put every
entry back as the snapshot had it in ``postgresql.auto.conf`` (its old value there, or
RESET when it had none), reload, and verify the snapshot is back.

Works on an autocommit psycopg connection opened without session options, so what
``pg_settings`` shows is what the server's configuration gives a new session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from dbops import sqlfiles
from dbops.configuration import settings as pg
from dbops.connections import query_failure

AUTO_CONF = "postgresql.auto.conf"
RELOAD_TIMEOUT = 10.0
# pg_file_settings says this of a postmaster-context entry until the server restarts.
PENDING_RESTART_ERROR = "setting could not be applied"
# Sources that beat the configuration files: a value set there shadows ALTER SYSTEM.
OVERRIDING_SOURCES = (
    "command line",
    "global",
    "database",
    "user",
    "database user",
    "client",
    "override",
    "interactive",
    "test",
    "session",
)

Log = Callable[[str], None]


class ApplyFailed(Exception):
    """The set could not be applied; ``restored`` says whether the snapshot is back."""

    def __init__(self, message: str, *, parameter: str = "", stage: str = ""):
        super().__init__(message)
        self.message = message
        self.parameter = parameter
        self.stage = stage
        self.restored: bool | None = None
        self.restore_problems: list[str] = []


@dataclass(frozen=True)
class Planned:
    parameter: str
    value: str  # the literal ALTER SYSTEM writes
    normalized: str  # what pg_settings.setting shows once it is in effect


@dataclass
class Snapshot:
    settings: dict[str, dict[str, Any]]
    files: list[dict[str, Any]]
    taken_at: str = ""

    def auto_conf(self, name: str) -> str | None:
        """The value postgresql.auto.conf held for ``name`` (its last entry), or None."""
        value = None
        for row in self.files:
            if row["name"] == name and str(row["sourcefile"] or "").endswith(AUTO_CONF):
                value = row["setting"]
        return value

    def as_json(self) -> dict[str, Any]:
        return {"settings": self.settings, "files": self.files, "taken_at": self.taken_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        return cls(data.get("settings", {}), data.get("files", []), data.get("taken_at", ""))


@dataclass
class Verified:
    parameter: str
    ok: bool
    pending_restart: bool
    shown: str
    source: str
    message: str


@dataclass
class Outcome:
    snapshot: Snapshot
    verified: list[Verified] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)


def _rows(conn: psycopg.Connection, name: str, params: dict | None = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sqlfiles.load(name), params)
        return list(cur.fetchall())


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def take_snapshot(conn: psycopg.Connection) -> Snapshot:
    now = conn.execute("SELECT now()").fetchone()[0]
    return Snapshot(
        settings={r["name"]: _jsonable(r) for r in _rows(conn, "config_snapshot_settings")},
        files=[_jsonable(r) for r in _rows(conn, "config_file_settings")],
        taken_at=now.isoformat(),
    )


def statement(name: str, value: str | None) -> sql.Composed:
    """ALTER SYSTEM SET name = 'value' (or RESET name): identifier and literal quoted by
    psycopg, never formatted into the text."""
    # "pg_stat_statements.track" is the grammar's var_name '.' ColId: two identifiers.
    ident = sql.Identifier(*name.split("."))
    if value is None:
        return sql.SQL("ALTER SYSTEM RESET {}").format(ident)
    return sql.SQL("ALTER SYSTEM SET {} = {}").format(ident, sql.Literal(value))


def _execute(conn: psycopg.Connection, query: sql.Composed, log: Log, out: list[str]) -> None:
    text = query.as_string(conn)
    log(f"{text}\n")
    out.append(text)
    conn.execute(query)


def reload(conn: psycopg.Connection, *, timeout: float = RELOAD_TIMEOUT) -> None:
    """pg_reload_conf(), then wait until this session has read the files again:
    pg_conf_load_time() moves once it has, so what follows sees the new values."""
    before = conn.execute("SELECT pg_conf_load_time()").fetchone()[0]
    if not conn.execute("SELECT pg_reload_conf()").fetchone()[0]:
        raise ApplyFailed("pg_reload_conf() returned false: the server did not reload.")
    deadline = time.monotonic() + timeout
    while conn.execute("SELECT pg_conf_load_time()").fetchone()[0] == before:
        if time.monotonic() > deadline:
            raise ApplyFailed(
                f"The server did not reload its configuration within {timeout:.0f} s.",
                stage="reload",
            )
        time.sleep(0.002)


def file_errors(
    conn: psycopg.Connection, names: list[str], contexts: dict[str, str]
) -> list[tuple[str, str]]:
    """(parameter or file, error) for problems pg_file_settings reports: any error in the
    files, and errors on the set's entries other than "pending restart" of a
    postmaster-context setting."""
    problems = []
    for row in _rows(conn, "config_file_settings"):
        if not row["error"]:
            continue
        name = row["name"]
        if name is None:  # a syntax error in a file: the whole reload is refused
            problems.append((str(row["sourcefile"]), f"{row['sourcefile']}: {row['error']}"))
            continue
        if name not in names:
            continue
        if row["error"] == PENDING_RESTART_ERROR and contexts.get(name) == "postmaster":
            continue
        problems.append(
            (name, f"{name} in {row['sourcefile']} line {row['sourceline']}: {row['error']}")
        )
    return problems


def verify(conn: psycopg.Connection, planned: list[Planned]) -> list[Verified]:
    """Each entry through pg_settings: in effect, or (postmaster) waiting for a restart."""
    current = pg.read(conn, [p.parameter for p in planned])
    out = []
    for p in planned:
        info = current.get(p.parameter)
        if info is None:
            out.append(Verified(p.parameter, False, False, "", "", "no longer in pg_settings"))
            continue
        shown = info.display
        if pg.same_value(info, p.normalized):
            out.append(Verified(p.parameter, True, False, shown, info.source, f"{shown} in effect"))
        elif info.restart_required and info.pending_restart:
            out.append(
                Verified(
                    p.parameter,
                    True,
                    True,
                    shown,
                    info.source,
                    f"{shown} until the server restarts (pending restart)",
                )
            )
        elif info.source in OVERRIDING_SOURCES:
            wanted = pg.display_value(info, p.normalized)
            out.append(
                Verified(
                    p.parameter,
                    False,
                    False,
                    shown,
                    info.source,
                    f"pg_settings shows {shown} from the {info.source} setting, which "
                    f"overrides {AUTO_CONF}: {wanted} does not take effect",
                )
            )
        else:
            wanted = pg.display_value(info, p.normalized)
            out.append(
                Verified(
                    p.parameter,
                    False,
                    False,
                    shown,
                    info.source,
                    f"pg_settings shows {shown} (source: {info.source}), not {wanted}",
                )
            )
    return out


def apply_set(
    conn: psycopg.Connection,
    planned: list[Planned],
    *,
    log: Log,
    contexts: dict[str, str],
    snapshot: Snapshot | None = None,
) -> Outcome:
    """Apply every entry or none. Raises ApplyFailed after restoring the snapshot."""
    outcome = Outcome(snapshot=snapshot or take_snapshot(conn))
    names = [p.parameter for p in planned]
    try:
        for p in planned:
            try:
                _execute(conn, statement(p.parameter, p.value), log, outcome.statements)
            except psycopg.Error as exc:
                raise ApplyFailed(
                    f"ALTER SYSTEM SET {p.parameter} failed: {query_failure(exc)}",
                    parameter=p.parameter,
                    stage="alter",
                ) from None
        problems = file_errors(conn, names, contexts)
        if problems:
            raise ApplyFailed(
                "pg_file_settings reports: " + "; ".join(m for _n, m in problems),
                parameter=problems[-1][0],
                stage="files",
            )
        log("SELECT pg_reload_conf()\n")
        reload(conn)
        problems = file_errors(conn, names, contexts)
        if problems:
            raise ApplyFailed(
                "After the reload pg_file_settings reports: " + "; ".join(m for _n, m in problems),
                parameter=problems[-1][0],
                stage="reload",
            )
        outcome.verified = verify(conn, planned)
        bad = [v for v in outcome.verified if not v.ok]
        if bad:
            raise ApplyFailed(
                "Verification failed: " + "; ".join(f"{v.parameter}: {v.message}" for v in bad),
                parameter=bad[-1].parameter,
                stage="verify",
            )
        for v in outcome.verified:
            log(f"  {v.parameter}: {v.message}\n")
    except (ApplyFailed, psycopg.Error) as exc:
        failure = (
            exc
            if isinstance(exc, ApplyFailed)
            else ApplyFailed(f"The server refused: {query_failure(exc)}", stage="server")
        )
        log(f"{failure.message}\nRestoring every entry of the set.\n")
        problems = restore(conn, outcome.snapshot, names, log=log, contexts=contexts)
        failure.restored = not problems
        failure.restore_problems = problems
        raise failure from None
    return outcome


def restore(
    conn: psycopg.Connection,
    snapshot: Snapshot,
    names: list[str],
    *,
    log: Log,
    contexts: dict[str, str],
) -> list[str]:
    """Put every entry back as the snapshot had it, reload, and say what is not back."""
    statements: list[str] = []
    problems = []
    for name in names:
        try:
            _execute(conn, statement(name, snapshot.auto_conf(name)), log, statements)
        except psycopg.Error as exc:
            problems.append(f"{name}: {query_failure(exc)}")
    try:
        log("SELECT pg_reload_conf()\n")
        reload(conn)
    except (ApplyFailed, psycopg.Error) as exc:
        problems.append(getattr(exc, "message", None) or query_failure(exc))
        return problems
    problems += snapshot_differences(conn, snapshot, names)
    log("Snapshot restored.\n" if not problems else "Not restored: " + "; ".join(problems) + "\n")
    return problems


def snapshot_differences(
    conn: psycopg.Connection, snapshot: Snapshot, names: list[str]
) -> list[str]:
    """Where pg_settings or postgresql.auto.conf differ from the snapshot for ``names``."""
    now = take_snapshot(conn)
    problems = []
    for name in names:
        before, after = snapshot.settings.get(name), now.settings.get(name)
        if before and after and before["setting"] != after["setting"]:
            problems.append(f"{name} is {after['setting']}, the snapshot had {before['setting']}")
        if snapshot.auto_conf(name) != now.auto_conf(name):
            problems.append(
                f"{name} in {AUTO_CONF} is {now.auto_conf(name)!r}, "
                f"the snapshot had {snapshot.auto_conf(name)!r}"
            )
    return problems
