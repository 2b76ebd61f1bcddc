"""Benchmark: peak memory and time of the change register and audit exports.

Run on demand (not part of `make test`), against a PostgreSQL server of your own:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \
        .venv/bin/python -m tests.bench.bench_exports --rows 50000

It creates a scratch database on that server (dropped at the end), loads changes with
their tenants, components and two decided approvals each (bulk_create in batches), and
the same number of hash-chained audit events, then downloads /reports/changes.csv,
/reports/changes.xlsx, /reports/audit.csv and /reports/audit.xlsx through the real view
(Django's test client, middleware included), each in a fresh process, first with a tenth
of the rows loaded and then with all of them. It prints, per export, the rows, bytes,
seconds and the process's peak RSS above its RSS before the export: flat memory means
the peak does not grow with the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

EXPORTS = ["changes.csv", "changes.xlsx", "audit.csv", "audit.xlsx"]
BATCH = 5_000


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


def load(total: int) -> None:
    """Add changes (and as many audit events) until there are ``total`` of each."""
    _setup()
    from datetime import timedelta

    from django.apps import apps
    from django.core.management import call_command
    from django.utils import timezone

    from changes.models import Approval, ChangeRequest
    from portal import defaults
    from portal.audit import GENESIS_HASH, compute_hash
    from portal.models import AuditEvent, Component, Tenant
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    if defaults.roles_missing(apps):
        defaults.seed_roles(apps)
    tenants = [Tenant.objects.get_or_create(slug=f"t{n}", name=f"Tenant {n}")[0] for n in range(5)]
    components = [Component.objects.get_or_create(name=f"component-{n}")[0] for n in range(20)]
    requester = UserFactory(username="bench-requester", roles=["REQUESTER"], tenants=tenants)
    approver = UserFactory(username="bench-security", roles=["SECURITY"], tenants=tenants)
    UserFactory(username="bench-compliance", roles=["COMPLIANCE"])
    now = timezone.now()
    have = ChangeRequest.objects.count()
    while have < total:
        size = min(BATCH, total - have)
        batch = ChangeRequest.objects.bulk_create(
            ChangeRequest(
                title=f"Bench change {have + i}: rotate certificates on the edge",
                description="Replace the expiring certificates.",
                type=("SECURITY", "FEATURE", "PERFORMANCE", "CONFIGURATION")[i % 4],
                priority=("LOW", "MEDIUM", "HIGH")[i % 3],
                proposed_start=now + timedelta(days=i % 300),
                window_minutes=60,
                implementation_plan="Deploy.",
                backout_plan="Redeploy the old bundle.",
                verification_plan="Check the expiry.",
                requester=requester,
                state="completed",
                category="STANDARD",
                risk_level="LOW",
                risk_score=10,
                outcome="SUCCESSFUL",
                submitted_at=now - timedelta(days=2),
                decided_at=now - timedelta(days=1),
                executed_at=now,
            )
            for i in range(size)
        )
        ChangeRequest.tenants.through.objects.bulk_create(
            ChangeRequest.tenants.through(changerequest_id=c.pk, tenant_id=tenants[c.pk % 5].pk)
            for c in batch
        )
        ChangeRequest.components.through.objects.bulk_create(
            ChangeRequest.components.through(
                changerequest_id=c.pk, component_id=components[c.pk % 20].pk
            )
            for c in batch
        )
        Approval.objects.bulk_create(
            Approval(
                change_id=c.pk,
                role=role,
                status="APPROVED",
                decided_by=approver,
                decided_at=now,
                comments="Fine.",
            )
            for c in batch
            for role in ("SECURITY", "COMPLIANCE")
        )
        have += size
    last = AuditEvent.objects.order_by("-sequence").first()
    sequence, prev = (last.sequence, last.hash) if last else (0, GENESIS_HASH)
    while sequence < total:
        events = []
        for _ in range(min(BATCH, total - sequence)):
            sequence += 1
            event = AuditEvent(
                sequence=sequence,
                created_at=timezone.now(),
                username="bench-security",
                role="SECURITY",
                action="approval.approved",
                object_type="changes.changerequest",
                object_id=f"CHG-{sequence:06d}",
                outcome="SUCCESS",
                details={"comment": "Fine."},
                prev_hash=prev,
            )
            event.hash = compute_hash(prev, event)
            prev = event.hash
            events.append(event)
        AuditEvent.objects.bulk_create(events)


def export(name: str) -> dict:
    _setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-compliance"))
    client.get("/reports/")  # warm up: templates, URL resolvers, connections
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = client.get(f"/reports/{name}")
    assert response.status_code == 200, response.status_code
    size = lines = 0
    with open(os.devnull, "wb") as sink:
        for chunk in response.streaming_content:
            size += len(chunk)
            lines += chunk.count(b"\n")
            sink.write(chunk)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "export": name,
        "bytes": size,
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before / 1024, 1),
        "peak_rss_mb": round(peak / 1024, 1),
        "peak_above_mb": round((peak - before) / 1024, 1),
    }


def _child(database_url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "PORTAL_ENV": "test"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_exports", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(result.stdout + result.stderr)
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--child", choices=["load", "export"])
    parser.add_argument("--arg", default="")
    args = parser.parse_args()
    if args.child == "load":
        load(int(args.arg))
        return 0
    if args.child == "export":
        print(json.dumps(export(args.arg)))
        return 0

    import psycopg
    from psycopg import sql

    server = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    name = f"bench_exports_{uuid.uuid4().hex[:8]}"
    admin_url = urlunsplit(server._replace(path="/postgres"))
    scratch = urlunsplit(server._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        head = ("rows", "export", "bytes", "s", "RSS before", "peak", "above")
        print("{:>7} {:<13} {:>11} {:>6} {:>10} {:>8} {:>7}".format(*head))
        for rows in (args.rows // 10, args.rows):
            started = time.perf_counter()
            _child(scratch, "--child", "load", "--arg", str(rows))
            took = time.perf_counter() - started
            print(f"loaded {rows} changes and {rows} audit events in {took:.0f} s")
            for item in EXPORTS:
                r = json.loads(_child(scratch, "--child", "export", "--arg", item).splitlines()[-1])
                print(
                    f"{rows:>7} {r['export']:<13} {r['bytes']:>11} {r['seconds']:>6} "
                    f"{r['rss_before_mb']:>7} MB {r['peak_rss_mb']:>5} MB "
                    f"{r['peak_above_mb']:>4} MB"
                )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
            )
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
