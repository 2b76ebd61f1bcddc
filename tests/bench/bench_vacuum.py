"""Benchmark: the portal's VACUUM ANALYZE procedure against `vacuumdb --analyze`.

Run on demand (not part of `make test`):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \
        .venv/bin/python -m tests.bench.bench_vacuum --rounds 5 --rows 300000 --tables 4

It creates a scratch target database, bloats the same tables before every timed run
(autovacuum off, every row updated once), then times in alternating order:
  * portal: the db_vacuum procedure's pre-checks, per-table VACUUM (ANALYZE) and
    verification (stats flush + comparison), as the worker runs them;
  * vacuumdb: `vacuumdb --analyze` on the same tables, one at a time.
It prints each round and the median ratio portal / vacuumdb (goal: at most 1.15).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--tables", type=int, default=4)
    args = parser.parse_args()

    django.setup()
    import psycopg
    from django.core.management import call_command
    from psycopg import sql

    from dbops.models import DatabaseTarget
    from maintenance.procedures import registry
    from maintenance.procedures.base import RunContext
    from portal.models import Component

    call_command("migrate", verbosity=0)
    host, port, user = "127.0.0.1", 5432, "postgres"
    name = f"bench_vacuum_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    tables = [f"claims_{n}" for n in range(args.tables)]
    component = Component.objects.create(name=f"bench-{name}", kind=Component.Kind.DATABASE)
    target = DatabaseTarget.objects.create(
        name=f"bench-{name}",
        host=host,
        port=port,
        database=name,
        user=user,
        sslmode="disable",
        component=component,
    )
    try:
        work = psycopg.connect(host=host, port=port, user=user, dbname=name, autocommit=True)
        for table in tables:
            work.execute(
                sql.SQL(
                    "CREATE TABLE {} (id int PRIMARY KEY, status text, amount numeric) "
                    "WITH (autovacuum_enabled = false)"
                ).format(sql.Identifier(table))
            )
            work.execute(
                sql.SQL("INSERT INTO {} SELECT g, 'new', g FROM generate_series(1, %s) g").format(
                    sql.Identifier(table)
                ),
                [args.rows],
            )
        work.execute("VACUUM ANALYZE")

        def bloat() -> None:
            for table in tables:
                work.execute(
                    sql.SQL("UPDATE {} SET amount = amount + 1").format(sql.Identifier(table))
                )
            work.execute("CHECKPOINT")

        procedure = registry.get("db_vacuum")
        params = {
            "target": target.pk,
            "tables": [["public", t] for t in tables],
            "dead_ratio_min": None,
            "analyze": True,
            "full": False,
            "disk_override_reason": "",
        }

        def run_portal() -> float:
            ctx = RunContext(
                run_id=0,
                params=params,
                change_id=0,
                window_end=None,
                log=lambda text: None,
                set_progress=lambda pct: None,
            )
            started = time.perf_counter()
            try:
                specs = (
                    procedure.prechecks(ctx)
                    + [s for s in procedure.steps(ctx) if s.name != "Notify stakeholders"]
                    + procedure.verify(ctx)
                )
                for spec in specs:
                    spec.run(ctx)
            finally:
                procedure.cleanup(ctx)
            return time.perf_counter() - started

        def run_vacuumdb() -> float:
            command = [
                "vacuumdb",
                "--analyze",
                "-h",
                host,
                "-p",
                str(port),
                "-U",
                user,
                "-d",
                name,
                *[a for t in tables for a in ("-t", t)],
                "--quiet",
            ]
            started = time.perf_counter()
            subprocess.run(command, check=True)
            return time.perf_counter() - started

        ratios = []
        print(f"{args.tables} tables × {args.rows} rows, {args.rounds} rounds")
        for n in range(args.rounds):
            order = [("portal", run_portal), ("vacuumdb", run_vacuumdb)]
            if n % 2:
                order.reverse()
            timings = {}
            for label, run in order:
                bloat()
                timings[label] = run()
            ratio = timings["portal"] / timings["vacuumdb"]
            ratios.append(ratio)
            print(
                f"round {n + 1}: portal {timings['portal']:.3f} s, "
                f"vacuumdb {timings['vacuumdb']:.3f} s, ratio {ratio:.3f}"
            )
        print(f"median ratio portal/vacuumdb: {statistics.median(ratios):.3f}")
        work.close()
    finally:
        target.delete()
        component.delete()
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
