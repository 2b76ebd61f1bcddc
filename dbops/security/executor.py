"""The PostgreSQL executor of security updates, for a component that is a database target.

Discovery reads ``server_version_num`` and every installed extension (``pg_extension``,
``pg_available_extension_versions``, and the order of versions its update scripts give).
An extension update is: a ``pg_dump -Fc`` of the database (or the listed schemas) taken
in an exported snapshot, with the row counts and small tables' contents digested in that
same snapshot; ``ALTER EXTENSION … UPDATE TO …``; verification of the version and the
declared read-only SQL checks. The rollback drops the extension, creates it at its old
version and restores the dump over it in one transaction, then verifies the old version
and that every table's rows are as they were when the dump was taken.

Runs hold the same per-target advisory lock as VACUUM/REINDEX/UPGRADE, so maintenance on
one target never overlaps.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from dbops import sqlfiles
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget
from dbops.security import backup
from maintenance.security import versions
from maintenance.security.executors import register
from maintenance.security.executors.base import (
    BackupFile,
    Executor,
    ExecutorRefused,
    Installed,
    Plan,
    Session,
    UpdateFailed,
    Work,
)
from portal.models import Component

SERVER_PACKAGE = "postgresql"
CHECK_TIMEOUT_MS = 60_000
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")


def _advisory_key(target: DatabaseTarget) -> int:
    from dbops.procedures.common import ADVISORY_BASE

    return ADVISORY_BASE + target.pk


def target_of(component: Component) -> DatabaseTarget:
    target = DatabaseTarget.objects.filter(component=component).first()
    if target is None:
        raise ExecutorRefused(f"{component} is not a database target.")
    return target


def _rows(conn: psycopg.Connection, name: str, params: dict | None = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sqlfiles.load(name), params)
        return list(cur.fetchall())


def server_version(num: int) -> str:
    return (
        f"{num // 10000}.{num % 10000}"
        if num >= 100000
        else f"{num // 10000}.{num // 100 % 100}.{num % 100}"
    )


def read_extensions(conn: psycopg.Connection) -> dict[str, dict]:
    extensions = {row["name"]: row for row in _rows(conn, "security_extensions")}
    paths: dict[str, list[tuple[str, str]]] = {}
    for row in _rows(conn, "security_update_paths"):
        paths.setdefault(row["name"], []).append((row["source"], row["target"]))
    for name, row in extensions.items():
        row["paths"] = paths.get(name, [])
        row["ordering"] = versions.ordering_from_paths(row["available"], row["paths"])
    return extensions


@contextlib.contextmanager
def _connected(target: DatabaseTarget, **kwargs):
    try:
        with connect(target, **kwargs) as conn:
            yield conn
    except TargetUnavailable as exc:
        raise UpdateFailed(exc.message) from None
    except psycopg.Error as exc:
        raise UpdateFailed(f"{target.name}: {query_failure(exc)}") from None


@register
class PostgreSQL(Executor):
    kind = "postgresql"
    label = "PostgreSQL database (server version, extensions)"
    description = "Extension updates with a pg_dump backup and a pg_restore rollback."
    rollback_text = (
        "Restore the pg_dump backup taken before the patch (pg_restore --clean --if-exists, "
        "in one transaction, with the extension created at its old version first), then "
        "check the old version and every table's rows against the backup."
    )

    def clean_config(self, component: Component, config: dict[str, Any]) -> dict[str, Any]:
        target_of(component)
        schemas = config.get("schemas") or []
        if isinstance(schemas, str):
            schemas = [s.strip() for s in schemas.split(",") if s.strip()]
        bad = [s for s in schemas if not SCHEMA_NAME.match(s)]
        if bad:
            raise ExecutorRefused(f"Not a plain lower-case schema name: {', '.join(bad)}.")
        return {"schemas": sorted(set(schemas))}

    def discover(self, component: Component, config: dict[str, Any]) -> list[Installed]:
        target = target_of(component)
        with _connected(target) as conn:
            num = int(conn.execute("SHOW server_version_num").fetchone()[0])
            extensions = read_extensions(conn)
        found = [Installed(versions.POSTGRESQL, SERVER_PACKAGE, server_version(num), {"num": num})]
        for name, row in sorted(extensions.items()):
            found.append(
                Installed(
                    versions.PG_EXTENSION,
                    name,
                    row["version"],
                    {
                        "schema": row["schema"],
                        "default_version": row["default_version"],
                        "available": list(row["available"]),
                        "ordering": row["ordering"],
                    },
                )
            )
        return found

    def plan(self, component, config, package, target_version) -> Plan:
        target = target_of(component)
        name = package.strip().lower()
        if name == SERVER_PACKAGE:
            raise ExecutorRefused(
                "The PostgreSQL server itself is upgraded with its operating-system packages "
                "and a restart; this executor updates extensions."
            )
        with _connected(target) as conn:
            extensions = read_extensions(conn)
            if name not in extensions:
                raise ExecutorRefused(f"{package} is not installed on {target.name}.")
            row = extensions[name]
            if target_version not in row["available"]:
                raise ExecutorRefused(
                    f"{name} has no version {target_version!r} on {target.name}; available: "
                    f"{', '.join(row['ordering'] if row['ordering'] else row['available'])}."
                )
            if (row["version"], target_version) not in set(row["paths"]):
                raise ExecutorRefused(
                    f"{name} cannot be updated from {row['version']} to {target_version}: "
                    "the server has no update path between them."
                )
            statement = self.statement(name, target_version).as_string(conn)
        return Plan(versions.PG_EXTENSION, name, row["version"], statement)

    @staticmethod
    def statement(name: str, version: str) -> sql.Composed:
        return sql.SQL("ALTER EXTENSION {} UPDATE TO {}").format(
            sql.Identifier(name), sql.Literal(version)
        )

    def check_kinds(self) -> tuple[str, ...]:
        return ("sql",)

    def open(self, component, config, work: Work) -> Session:
        return _DatabaseSession(target_of(component), config, work)


class _DatabaseSession(Session):
    def __init__(self, target: DatabaseTarget, config: dict[str, Any], work: Work):
        self.target, self.config, self.work = target, config, work
        self.schemas: list[str] = list(config.get("schemas") or [])
        self._manager = None
        self.conn: psycopg.Connection | None = None
        self.applied = False

    def __enter__(self) -> _DatabaseSession:
        try:
            self._manager = connect(
                self.target, autocommit=True, statement_timeout_ms=None, lock_timeout_ms=None
            )
            self.conn = self._manager.__enter__()
        except TargetUnavailable as exc:
            raise UpdateFailed(exc.message) from None
        locked = self.conn.execute(
            "SELECT pg_try_advisory_lock(%s)", [_advisory_key(self.target)]
        ).fetchone()[0]
        if not locked:
            self.close()
            raise UpdateFailed(
                f"Another maintenance run holds {self.target.name}'s lock; nothing was changed."
            )
        self.conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal("30s")))
        return self

    def close(self) -> None:
        manager, self._manager = self._manager, None
        if manager is not None:
            with contextlib.suppress(Exception):
                manager.__exit__(None, None, None)
        self.conn = None

    def _execute(self, statement, params=None):
        try:
            return self.conn.execute(statement, params)
        except psycopg.Error as exc:
            raise UpdateFailed(query_failure(exc)) from None

    def version(self, update) -> str | None:
        row = self._execute(
            "SELECT extversion FROM pg_extension WHERE extname = %s", [update.package]
        ).fetchone()
        return row[0] if row else None

    def _extensions(self) -> dict[str, dict]:
        return {r["name"]: r for r in _rows(self.conn, "security_extensions")}

    # --- backup --------------------------------------------------------------------------

    def backup(self, update) -> BackupFile:
        return backup.take(
            target=self.target,
            extension=update.package,
            schemas=self.schemas,
            work=self.work,
        )

    # --- patch and verification -------------------------------------------------------------

    def apply(self, update, patch) -> dict[str, Any]:
        statement = PostgreSQL.statement(update.package, update.target_version)
        text = statement.as_string(self.conn)
        if self.applied:
            return {"included_in": text}
        self.work.log(text + "\n")
        self._execute(statement)
        self.applied = True
        return {"statement": text}

    def _sql_check(self, check) -> dict[str, Any]:
        with _connected(
            self.target, autocommit=False, statement_timeout_ms=CHECK_TIMEOUT_MS
        ) as conn:
            conn.read_only = True
            try:
                row = conn.execute(check.sql).fetchone()
            except psycopg.Error as exc:
                raise UpdateFailed(
                    f"SQL check {check.sql!r} failed: {query_failure(exc)}"
                ) from None
            finally:
                conn.rollback()
        got = "" if row is None or row[0] is None else str(row[0])
        self.work.log(f"{check.sql} → {got!r} (expected {check.expect!r})\n")
        if got != check.expect:
            raise UpdateFailed(f"SQL check {check.sql!r} gave {got!r}, expected {check.expect!r}.")
        return {"sql": check.sql, "value": got}

    def verify(self, update) -> dict[str, Any]:
        now = self.version(update)
        if now != update.target_version:
            raise UpdateFailed(f"{update.package} is at {now}, expected {update.target_version}.")
        checks = [self._sql_check(c) for c in update.checks if c.kind == "sql"]
        return {"version": now, "checks": checks}

    # --- rollback --------------------------------------------------------------------------

    def rollback(self, update, path: Path, metadata: dict[str, Any]) -> dict[str, Any]:
        return backup.restore(target=self.target, path=path, metadata=metadata, work=self.work)
