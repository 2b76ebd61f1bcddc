"""A throwaway database on the test server with HypoPG created, for the advisor tests."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

import pytest
from psycopg import sql


def require_hypopg(conn) -> None:
    available = conn.execute(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'"
    ).fetchone()[0]
    if not available:
        pytest.fail(
            "HypoPG is not installed on the test server: apt-get install postgresql-15-hypopg "
            "(.ci/run does this)"
            + (": CI=true, nothing is skipped." if os.environ.get("CI") else ".")
        )


@contextmanager
def advisor_database(pg_server, statements: list[str], *, hypopg: bool = True):
    name = f"dbops_adv_{uuid.uuid4().hex[:10]}"
    with pg_server.connect("postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with pg_server.connect(name) as conn:
            if hypopg:
                require_hypopg(conn)
                conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            for statement in statements:
                conn.execute(statement)
        yield name
    finally:
        with pg_server.connect("postgres") as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
