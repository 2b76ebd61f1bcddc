"""Drill: the portal's PostgreSQL restarts while people read and write.

A private cluster (``tests.services.PgCluster``) under a real gunicorn; signed-in clients
loop over a read (the change list) and a write (a new draft change with a unique title)
while the cluster is restarted (``pg_ctl restart -m fast``). Expected: every write
answered with success is in the database exactly once, no debug page, no 400, no 5xx
but a 503 with Retry-After, no dropped connection, and every client served again soon
after the database is back (the recovery time).

    .venv/bin/python -m tests.bench.drills.pg_restart --clients 8 --restarts 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.bench.drills.harness import Client, Processes, portal_env, start_web

DEBUG_MARKERS = ("Traceback", "DEBUG = True", "technical_500", "OperationalError")


@dataclass
class Record:
    client: int
    kind: str  # "read" or "write"
    started: float
    ended: float
    status: int | None
    title: str = ""
    debug_page: bool = False
    retry_after: str | None = None
    body: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (200, 302)


def change_form(token: str, *, title: str, tenant: int, component: int) -> dict[str, str]:
    from django.utils import timezone

    start = (timezone.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    return {
        "csrfmiddlewaretoken": token,
        "title": title,
        "description": "Drill: written while the database restarts.",
        "type": "CONFIGURATION",
        "priority": "LOW",
        "components": str(component),
        "tenants": str(tenant),
        "proposed_start": start,
        "window_minutes": "30",
        "implementation_plan": "Apply it.",
        "backout_plan": "Revert it.",
        "verification_plan": "Check it.",
        "version": "",
    }


class Load:
    """One thread per client, each alternating a read and a write until stopped."""

    def __init__(self, base_url: str, seeded: dict[str, Any]) -> None:
        self.base_url = base_url
        self.seeded = seeded
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def _client(self, index: int) -> None:
        client = Client(self.base_url, timeout=30)
        client.use_session(self.seeded["sessions"][index])
        _, token = client.form_token("/changes/new/")
        n = 0
        while not self.stop.is_set():
            n += 1
            title = f"drill {self.seeded['run']} c{index} w{n}"
            form = change_form(
                token,
                title=title,
                tenant=self.seeded["tenant"],
                component=self.seeded["component"],
            )
            for kind, call in (
                ("read", lambda: client.get("/changes/")),
                ("write", lambda form=form: client.post("/changes/new/", form)),
            ):
                started = time.monotonic()
                answer = call()
                record = Record(
                    client=index,
                    kind=kind,
                    started=started,
                    ended=time.monotonic(),
                    status=answer.status,
                    title=title if kind == "write" else "",
                    debug_page=any(marker in answer.body for marker in DEBUG_MARKERS),
                    retry_after=answer.headers.get("retry-after"),
                    body=answer.body if answer.status == 503 else "",
                )
                with self.lock:
                    self.records.append(record)

    def start(self) -> None:
        for index in range(len(self.seeded["sessions"])):
            thread = threading.Thread(target=self._client, args=(index,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> list[Record]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        return list(self.records)


def analyse(
    records: list[Record], restarts: list[tuple[float, float]], present: dict[str, int]
) -> dict[str, Any]:
    """The drill's figures. ``restarts``: (began, database ready again) per restart."""
    committed = [r.title for r in records if r.kind == "write" and r.status == 302]
    answered_503 = [r.title for r in records if r.kind == "write" and r.status == 503]
    recoveries = []
    for _began, ready in restarts:
        firsts = []
        for client in {r.client for r in records}:
            after = [r.ended for r in records if r.client == client and r.ok and r.started >= ready]
            if after:
                firsts.append(min(after) - ready)
        recoveries.append(round(max(firsts), 3) if firsts else None)
    failures = [r for r in records if not r.ok]
    return {
        "requests": len(records),
        "reads": sum(r.kind == "read" for r in records),
        "writes": sum(r.kind == "write" for r in records),
        "restarts": len(restarts),
        "restart_s": [round(ready - began, 3) for began, ready in restarts],
        "recovery_s": recoveries,
        "reads_503": sum(r.status == 503 and r.kind == "read" for r in records),
        "writes_503": sum(r.status == 503 and r.kind == "write" for r in records),
        "503_without_retry_after": sum(r.status == 503 and not r.retry_after for r in records),
        "server_errors_not_503": sum(
            r.status is not None and r.status >= 500 and r.status != 503 for r in records
        ),
        "answered_400": sum(r.status == 400 for r in records),
        "other_statuses": sorted(
            {str(r.status) for r in failures if r.status not in (503, 400, None)}
        ),
        "debug_pages": sum(r.debug_page for r in records),
        "dropped": sum(r.status is None for r in records),
        "committed_writes": len(committed),
        "committed_writes_lost": sum(present.get(t, 0) != 1 for t in committed),
        "writes_answered_503_but_saved": sum(present.get(t, 0) == 1 for t in answered_503),
        "duplicated_writes": sum(n > 1 for n in present.values()),
        "sample_503": next((r.body for r in records if r.status == 503), ""),
    }


def check(figures: dict[str, Any], *, recovery_goal: float = 2.0) -> list[str]:
    problems = []
    for key in (
        "committed_writes_lost",
        "duplicated_writes",
        "server_errors_not_503",
        "answered_400",
        "debug_pages",
        "dropped",
        "503_without_retry_after",
    ):
        if figures[key]:
            problems.append(f"{key}: {figures[key]}")
    if figures["other_statuses"]:
        problems.append(f"unexpected statuses: {figures['other_statuses']}")
    for seconds in figures["recovery_s"]:
        if seconds is None or seconds > recovery_goal:
            problems.append(f"recovery {seconds} s (goal under {recovery_goal} s)")
    if not figures["committed_writes"]:
        problems.append("no write succeeded at all")
    return problems


def drill(
    processes: Processes,
    cluster,
    base_url: str,
    seeded: dict[str, Any],
    *,
    restarts: int,
    warm: float,
    settle: float,
) -> dict[str, Any]:
    load = Load(base_url, seeded)
    load.start()
    moments = []
    try:
        time.sleep(warm)  # the clients' own pace sets the load; this only spaces restarts
        for _ in range(restarts):
            began = time.monotonic()
            cluster.restart()
            moments.append((began, time.monotonic()))
            time.sleep(settle)
    finally:
        records = load.finish()
    titles = sorted({r.title for r in records if r.kind == "write"})
    present = processes.python(
        "from tests.bench.drills import seed\n"
        f"print(json.dumps(seed.changes_titled(titles={titles!r})))"
    )
    return analyse(records, moments, present)


def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--warm", type=float, default=3.0)
    parser.add_argument("--settle", type=float, default=6.0)
    options = parser.parse_args()

    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from tests.services import PgCluster

    with tempfile.TemporaryDirectory(prefix="drill-pg-") as tmp, PgCluster() as cluster:
        var_dir = Path(tmp)
        cluster.create_database("portal")
        processes = Processes(
            portal_env(
                database_url=cluster.url("portal"), broker_url="filesystem://", var_dir=var_dir
            ),
            var_dir,
        )
        try:
            processes.manage("migrate", "--noinput")
            seeded = processes.python(
                "from tests.bench.drills import seed\n"
                f"print(json.dumps(seed.requesters(clients={options.clients})))"
            )
            base_url = start_web(processes)
            figures = drill(
                processes,
                cluster,
                base_url,
                seeded,
                restarts=options.restarts,
                warm=options.warm,
                settle=options.settle,
            )
        finally:
            processes.stop_all()
    figures["problems"] = check(figures)
    figures["sample_503"] = figures["sample_503"][:200]
    print(json.dumps(figures, indent=2))
    return 1 if figures["problems"] else 0


if __name__ == "__main__":
    sys.exit(_main())
