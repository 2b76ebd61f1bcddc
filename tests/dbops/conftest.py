"""Target databases of their own on the test server, registered as database targets."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

SECRET = "Tr0ub4dor&3-never-shown"
SLOW = "SELECT * FROM orders WHERE customer_ref = $1"


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str | None

    def connect(self, dbname: str, *, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
            autocommit=autocommit,
        )


@pytest.fixture(scope="session")
def pg_server() -> Server:
    db = settings.DATABASES["default"]
    assert db["ENGINE"] == "portal.db.postgresql", "dbops tests need PostgreSQL"
    return Server(
        host=db.get("HOST") or "127.0.0.1",
        port=int(db.get("PORT") or 5432),
        user=db.get("USER") or "postgres",
        password=db.get("PASSWORD") or None,
    )


@dataclass(frozen=True)
class TargetDatabase:
    server: Server
    name: str

    def connect(self, **kwargs) -> psycopg.Connection:
        return self.server.connect(self.name, **kwargs)

    def run(self, *statements: str) -> None:
        with self.connect() as conn:
            for statement in statements:
                conn.execute(statement)


@pytest.fixture
def target_db(pg_server) -> TargetDatabase:
    """A uniquely named database created for the test and dropped after it."""
    name = f"dbops_t_{uuid.uuid4().hex[:12]}"
    with pg_server.connect("postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield TargetDatabase(server=pg_server, name=name)
    with pg_server.connect("postgres") as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def statements_db(target_db) -> TargetDatabase:
    """The target database with pg_stat_statements created and readable."""
    with target_db.connect() as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        if "pg_stat_statements" not in preload:
            pytest.fail(
                "pg_stat_statements is not preloaded on the test server: run "
                "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements' and restart "
                "PostgreSQL (.ci/run does this)."
            )
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return target_db


@pytest.fixture
def make_target(db, superuser, tenant, target_db) -> Callable[..., object]:
    from dbops.services import database_target_create

    def make(*, password: str = SECRET, tenants=None, database: str | None = None, **data):
        server = target_db.server
        fields = {
            "name": data.pop("name", f"target-{uuid.uuid4().hex[:6]}"),
            "host": server.host,
            "port": server.port,
            "database": database or target_db.name,
            "user": server.user,
            "sslmode": "disable",
            **data,
        }
        return database_target_create(
            by=superuser, data=fields, password=password, tenants=tenants or []
        )

    return make


@pytest.fixture
def target(make_target):
    return make_target(name="claims-db")


@pytest.fixture
def slow_orders(statements_db):
    """300 000 orders and no index on customer_ref, queried five times by it."""
    with statements_db.connect() as conn:
        conn.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_ref int NOT NULL,"
            " status text NOT NULL, note text)"
        )
        conn.execute(
            "INSERT INTO orders SELECT i, i % 50000, (ARRAY['open','paid','void'])[i % 3 + 1],"
            " repeat('x', 40) FROM generate_series(1, 300000) AS i"
        )
        conn.execute("ANALYZE orders")
        for ref in (11, 222, 3333, 4444, 5555):
            conn.execute("SELECT * FROM orders WHERE customer_ref = %s", [ref])
        conn.execute("SELECT id FROM orders WHERE status IN (%s, %s)", ["open", "void"])
        conn.execute("SELECT id FROM orders WHERE status IN (%s, %s, %s)", ["a", "b", "c"])
        conn.execute("SELECT pg_stat_force_next_flush()")
        [(queryid,)] = conn.execute(
            "SELECT queryid FROM pg_stat_statements WHERE query = %s"
            " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [SLOW],
        ).fetchall()
    return queryid
