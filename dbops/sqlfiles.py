"""SQL kept in dbops/sql/*.sql, loaded once. Files may name identifiers as ``{name}``
placeholders, filled only with ``psycopg.sql.Identifier`` values.

Every statement starts with MARKER, so the query-performance analysis can leave the
portal's own monitoring and maintenance statements out of a target's statistics."""

from __future__ import annotations

import functools
from pathlib import Path

from psycopg import sql

SQL_DIR = Path(__file__).resolve().parent / "sql"
MARKER = "/* change-portal */"


@functools.cache
def _text(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if path.parent != SQL_DIR:
        raise ValueError(f"Not an SQL file name: {name!r}")
    return f"{MARKER}\n{path.read_text(encoding='utf-8')}"


def load(name: str, **identifiers: sql.Identifier) -> sql.Composed | sql.SQL:
    query = sql.SQL(_text(name))
    return query.format(**identifiers) if identifiers else query
