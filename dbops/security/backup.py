"""The extension executor's backup and rollback, for any procedure that changes an
extension (the Security update's executor, UPGRADE).

The backup is a ``pg_dump -Fc`` of the database (or the listed schemas) taken in an
exported snapshot, with every table's row count, and for tables up to DIGEST_MAX_ROWS
an MD5 of their rows, read in that same snapshot. The restore drops the extension,
creates it at its old version and restores the dump over it in one transaction
(``dump.restore``), then checks the old version, the other extensions and every table
against what the backup recorded.

Neither takes the per-target advisory lock: the caller holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from dbops import sqlfiles
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget
from dbops.security import dump
from maintenance.security.executors.base import BackupFile, UpdateFailed, Work

DIGEST_MAX_ROWS = 100_000
MAX_TABLES = 2000


def _rows(conn: psycopg.Connection, name: str, params: dict | None = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sqlfiles.load(name), params)
        return list(cur.fetchall())


class _Connected:
    def __init__(self, target: DatabaseTarget, **kwargs):
        self.manager = connect(target, **kwargs)
        self.target = target

    def __enter__(self) -> psycopg.Connection:
        try:
            return self.manager.__enter__()
        except TargetUnavailable as exc:
            raise UpdateFailed(exc.message) from None

    def __exit__(self, kind, exc, tb):
        handled = self.manager.__exit__(kind, exc, tb)
        if isinstance(exc, psycopg.Error):
            raise UpdateFailed(f"{self.target.name}: {query_failure(exc)}") from None
        return handled


def extensions(conn: psycopg.Connection) -> dict[str, dict]:
    return {r["name"]: r for r in _rows(conn, "security_extensions")}


def _check_schemas_cover(conn: psycopg.Connection, extension: str, schemas: list[str]) -> None:
    if not schemas:
        return
    used = {r["schema"] for r in _rows(conn, "security_extension_dependents", {"name": extension})}
    outside = sorted(used - set(schemas))
    if outside:
        raise UpdateFailed(
            f"Objects in {', '.join(outside)} use {extension}, but the backup covers only "
            f"{', '.join(schemas)}: a rollback could not restore them."
        )


def table_state(conn: psycopg.Connection, schemas: list[str]) -> dict[str, dict[str, Any]]:
    tables = _rows(conn, "security_backup_tables", {"schemas": schemas or None})
    if len(tables) > MAX_TABLES:
        raise UpdateFailed(f"More than {MAX_TABLES} tables; back this database up by hand.")
    state: dict[str, dict[str, Any]] = {}
    for t in tables:
        ident = sql.Identifier(t["schema"], t["name"])
        count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0]
        entry: dict[str, Any] = {"rows": count}
        if count <= DIGEST_MAX_ROWS:
            query = sql.SQL(
                "SELECT md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), ''))"
                " FROM {} AS r"
            ).format(ident)
            entry["md5"] = conn.execute(query).fetchone()[0]
        state[f"{t['schema']}.{t['name']}"] = entry
    return state


def take(*, target: DatabaseTarget, extension: str, schemas: list[str], work: Work) -> BackupFile:
    """Dump the database before ``extension`` changes, recording what a restore must
    bring back."""
    with _Connected(target) as conn:
        _check_schemas_cover(conn, extension, schemas)
        installed = extensions(conn)
    if extension not in installed:
        raise UpdateFailed(f"{extension} is not installed on {target.name}.")
    with _Connected(target, autocommit=False, statement_timeout_ms=None) as snap:
        snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snap.read_only = True
        snapshot = snap.execute("SELECT pg_export_snapshot()").fetchone()[0]
        tables = table_state(snap, schemas)
        path = dump.dump(
            target=target,
            workdir=work.workdir,
            snapshot=snapshot,
            schemas=schemas,
            timeout=work.timeout_seconds,
            log=work.log,
        )
        snap.rollback()
    work.log(f"{len(tables)} table(s) counted in the dump's snapshot.\n")
    ext = installed[extension]
    return BackupFile(
        path=path,
        kind="pg_dump",
        metadata={
            "target": target.name,
            "database": target.database,
            "schemas": schemas or "all",
            "extension": extension,
            "extension_version": ext["version"],
            "extension_schema": ext["schema"],
            "extensions": {n: r["version"] for n, r in installed.items()},
            "tables": tables,
            "pg_dump": dump.client_version("pg_dump"),
        },
    )


def restore(
    *, target: DatabaseTarget, path: Path, metadata: dict[str, Any], work: Work
) -> dict[str, Any]:
    """Put the database back as the backup found it, and prove it."""
    name, old = metadata["extension"], metadata["extension_version"]
    schemas = [] if metadata.get("schemas") == "all" else list(metadata.get("schemas") or [])
    prelude = sql.SQL(
        "DROP EXTENSION IF EXISTS {name} CASCADE;\n"
        "CREATE EXTENSION {name} WITH SCHEMA {schema} VERSION {version};\n"
    ).format(
        name=sql.Identifier(name),
        schema=sql.Identifier(metadata["extension_schema"]),
        version=sql.Literal(old),
    )
    listing = dump.restore_list(path, leave_out_extension=name, workdir=work.workdir)
    with _Connected(target) as conn:
        prelude_text = prelude.as_string(conn)
    seconds = dump.restore(
        target=target,
        dump_path=path,
        list_path=listing,
        prelude=prelude_text,
        workdir=work.workdir,
        timeout=work.timeout_seconds,
        log=work.log,
    )
    with _Connected(target, statement_timeout_ms=None) as conn:
        now = {n: r["version"] for n, r in extensions(conn).items()}
        tables = table_state(conn, schemas)
    if now.get(name) != old:
        raise UpdateFailed(f"After the restore {name} is at {now.get(name)}, not {old}.")
    moved = {n: v for n, v in metadata.get("extensions", {}).items() if now.get(n) != v}
    if moved:
        raise UpdateFailed(f"After the restore these extensions differ: {moved}.")
    differ = [t for t, state in metadata.get("tables", {}).items() if tables.get(t) != state]
    if differ:
        raise UpdateFailed(
            f"After the restore these tables differ from the backup: {', '.join(differ[:10])}."
        )
    work.log(f"Restored in {seconds} s; {name} {old}; {len(tables)} table(s) as backed up.\n")
    return {"seconds": seconds, "version": old, "tables_checked": len(metadata.get("tables", {}))}
