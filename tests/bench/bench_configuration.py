"""Benchmark: applying and verifying a 10-parameter change set, the portal's way,
against the same ALTER SYSTEM statements and a reload run by `psql`.

Run on demand (not part of `make test`), with a portal database for the rules:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \
        .venv/bin/python -m tests.bench.bench_configuration --rounds 9

The target is a throwaway cluster (tests/services.py): ALTER SYSTEM never touches the
shared server. Each round sets the ten parameters to the other of two value sets, in
alternating order:
  * portal: connect; validate the set again (pg_settings rows, facts, rules); snapshot
    pg_settings and pg_file_settings; ALTER SYSTEM SET each (psycopg sql.Identifier /
    sql.Literal); check pg_file_settings.error; pg_reload_conf() and wait until the
    session has re-read the files; check pg_file_settings again; verify each value
    through pg_settings;
  * psql: `psql -X -q -v ON_ERROR_STOP=1 -f` of the same ten ALTER SYSTEM statements
    and SELECT pg_reload_conf() (psql neither waits for the reload nor verifies).
It prints each round and the median ratio portal / psql (goal: at most 1.5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

VALUES = {
    "work_mem": ("8MB", "16MB"),
    "maintenance_work_mem": ("128MB", "256MB"),
    "random_page_cost": ("1.1", "2"),
    "effective_cache_size": ("2GB", "3GB"),
    "checkpoint_completion_target": ("0.8", "0.9"),
    "default_statistics_target": ("150", "200"),
    "log_min_duration_statement": ("250ms", "500ms"),
    "idle_in_transaction_session_timeout": ("5min", "10min"),
    "effective_io_concurrency": ("100", "200"),
    "autovacuum_vacuum_scale_factor": ("0.05", "0.1"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    django.setup()
    from django.core.management import call_command

    from dbops.configuration import apply as configuration
    from dbops.configuration.validation import validate_on
    from dbops.connections import connect
    from dbops.models import DatabaseTarget
    from portal.models import Component
    from tests.services import PgCluster

    call_command("migrate", verbosity=0)
    psql = shutil.which("psql")
    if psql is None:
        print("psql is not installed", file=sys.stderr)
        return 2
    cluster = PgCluster().start()
    name = f"bench-config-{uuid.uuid4().hex[:8]}"
    component = Component.objects.create(name=name, kind=Component.Kind.DATABASE)
    target = DatabaseTarget.objects.create(
        name=name,
        host=cluster.host,
        port=cluster.port,
        database="postgres",
        user=cluster.user,
        sslmode="disable",
        component=component,
    )

    def entries(round_no: int) -> list[tuple[str, str]]:
        return [(p, pair[round_no % 2]) for p, pair in VALUES.items()]

    def portal(round_no: int) -> float:
        started = time.perf_counter()
        with connect(target, statement_timeout_ms=None, lock_timeout_ms=None) as conn:
            validation = validate_on(conn, target, entries(round_no))
            assert validation.ok, validation.summary()
            planned = [
                configuration.Planned(e.parameter, e.value, e.normalized)
                for e in validation.entries
            ]
            contexts = {e.parameter: e.info.context for e in validation.entries}
            snapshot = configuration.take_snapshot(conn)
            outcome = configuration.apply_set(
                conn, planned, log=lambda text: None, contexts=contexts, snapshot=snapshot
            )
            assert all(v.ok for v in outcome.verified)
        return time.perf_counter() - started

    def by_psql(round_no: int) -> float:
        with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
            for p, value in entries(round_no):
                script.write(f"ALTER SYSTEM SET {p} = '{value}';\n")
            script.write("SELECT pg_reload_conf();\n")
            script.flush()
            started = time.perf_counter()
            subprocess.run(
                [
                    psql,
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    cluster.host,
                    "-p",
                    str(cluster.port),
                    "-U",
                    cluster.user,
                    "-d",
                    "postgres",
                    "-f",
                    script.name,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            return time.perf_counter() - started

    ratios = []
    try:
        portal(1), by_psql(0)  # warm both paths once
        for n in range(args.rounds):
            first, second = (portal, by_psql) if n % 2 == 0 else (by_psql, portal)
            a = first(2 * n)
            b = second(2 * n + 1)
            portal_s, psql_s = (a, b) if first is portal else (b, a)
            ratios.append(portal_s / psql_s)
            print(
                f"round {n + 1}: portal {portal_s * 1000:.1f} ms, psql {psql_s * 1000:.1f} ms, "
                f"ratio {ratios[-1]:.2f}"
            )
    finally:
        target.delete()
        component.delete()
        cluster.remove()
    print(
        f"median ratio portal / psql over {args.rounds} rounds: {statistics.median(ratios):.2f} "
        f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}; goal: at most 1.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
