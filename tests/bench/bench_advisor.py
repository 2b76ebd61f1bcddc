"""Benchmark: the index advisor over 1,000 distinct statements from pg_stat_statements.

Run on demand (not part of `make test`):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \
        .venv/bin/python -m tests.bench.bench_advisor --statements 1000

It creates a scratch database on that server (pg_stat_statements and HypoPG created),
five tables of 20,000 rows, runs that many structurally distinct statements once each
(equality, IN, ranges, BETWEEN, IS NULL, LIKE, ORDER BY … LIMIT, pairs of columns, OR,
joins), reads them back from pg_stat_statements, then times the advisor as the query
page runs it: the catalog read, the rules, and a HypoPG proof of every suggestion.
Goal: under one second per 100 statements.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

TABLES = 5
COLUMNS = 10


def statements(count: int) -> list[str]:
    cols = [f"c{i}" for i in range(COLUMNS)]
    shapes = [
        "{c} = $1",
        "{c} IN ($1, $2, $3)",
        "{c} > $1",
        "{c} BETWEEN $1 AND $2",
        "{c} IS NULL",
        "{c} = $1 ORDER BY id DESC LIMIT 10",
        "{c} < $1 ORDER BY {c} LIMIT 5",
        "lower(s{k}) = $1::text",
        "s{k} LIKE 'x%'",
        "({c} = $1 OR {d} = $2)",
        "{c} >= $1 AND {c} < $2 ORDER BY {c}",
        "{c} = $1 AND {d} IS NOT NULL",
    ]
    out: list[str] = []
    for t in range(TABLES):
        for shape, c in itertools.product(shapes, cols):
            k = int(c[1:]) % 2
            where = shape.format(c=c, d=cols[(int(c[1:]) + 1) % COLUMNS], k=k)
            out.append(f"SELECT * FROM t{t} WHERE {where}")
        for a, b in itertools.combinations(cols, 2):
            out.append(f"SELECT id FROM t{t} WHERE {a} = $1 AND {b} > $2")
            out.append(f"SELECT count(*) FROM t{t} WHERE {a} = $1 AND {b} = $2")
        for c in cols:
            out.append(
                f"SELECT t{t}.id FROM t{t} JOIN t{(t + 1) % TABLES} AS o"
                f" ON o.{c} = t{t}.id WHERE t{t}.c0 = $1"
            )
    return out[: count + count // 5]  # some normalise to the same statement


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    django.setup()
    import psycopg
    from psycopg import sql

    from dbops import stats
    from dbops.stats import statements_status

    host, port, user = "127.0.0.1", 5432, "postgres"
    name = f"bench_advisor_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(host=host, port=port, user=user, dbname=name, autocommit=True) as conn:
            for ext in ("pg_stat_statements", "hypopg", "pg_trgm"):
                conn.execute(
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext))
                )
            for t in range(TABLES):
                columns = ", ".join(f"c{i} int" for i in range(COLUMNS))
                conn.execute(
                    f"CREATE TABLE t{t} (id bigint PRIMARY KEY, {columns}, s0 text, s1 text)"
                )
                values = ", ".join(
                    f"abs(hashint4(i + {i})) % {10 ** (1 + i % 4)}" for i in range(COLUMNS)
                )
                conn.execute(
                    f"INSERT INTO t{t} SELECT i, {values}, 'x' || i, 'y' || (i % 97)"
                    " FROM generate_series(1, 20000) AS i"
                )
                conn.execute(f"ANALYZE t{t}")
            conn.execute("SELECT pg_stat_statements_reset()")
            wanted = statements(args.statements)
            for query in wanted:
                n = query.count("$")
                text = query
                for i in range(n, 0, -1):
                    text = text.replace(f"${i}", "1")
                conn.execute(text)
            conn.execute("SELECT pg_stat_force_next_flush()")
            status = statements_status(conn)
            found = stats.fetch(
                conn, "statements_snapshot", {"limit": 5000}, statements=status.identifier
            )
            got = [stats._statement(r) for r in found if r["query"].startswith("SELECT")]
            got = got[: args.statements]
            print(f"{len(got)} distinct statements in pg_stat_statements")
            timings = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                advice = stats.advice(conn, got)
                timings.append(time.perf_counter() - start)
            per_100 = statistics.median(timings) / len(got) * 100
            print(
                f"rounds {', '.join(f'{t:.2f}' for t in timings)} s; "
                f"{len(advice.suggestions)} suggestions, "
                f"{len(advice.rejected)} ruled out by HypoPG; "
                f"median {per_100:.3f} s per 100 statements (goal: under 1 s)"
            )
            return 0 if per_100 < 1.0 else 1
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.close()


if __name__ == "__main__":
    sys.exit(main())
