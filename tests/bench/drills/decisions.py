"""Drill: many approvers click "Approve" at the same moment.

Every client is a real signed-in session that loaded the approval page (its CSRF token
and the approval's version, as the browser has them) before all post at once to the
decision URL of the real gunicorn. Expected: exactly one decision per approval, every
other click a clear 409, no 5xx, no connection dropped.

    .venv/bin/python -m tests.bench.drills.decisions --backend sqlite --approvals 1 --clients 1000
    .venv/bin/python -m tests.bench.drills.decisions --backend postgres --approvals 20 \
        --clients 1000

Both start their own services (a SQLite file, or a throwaway PostgreSQL cluster) and
portal processes, and print the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.bench.drills.harness import (
    Client,
    DrillError,
    Processes,
    Tally,
    portal_env,
    run_at_once,
    start_web,
)

VERSION_RE = re.compile(r'name="version" value="(\d+)"')


def seed(processes: Processes, *, approvals: int, clients: int) -> dict[str, Any]:
    return processes.python(
        "from tests.bench.drills import seed\n"
        f"print(json.dumps(seed.decisions(approvals={approvals}, clients={clients})))"
    )


def outcome(processes: Processes, approval_ids: list[int]) -> dict[str, Any]:
    return processes.python(
        "from tests.bench.drills import seed\n"
        f"print(json.dumps(seed.decided(approval_ids={approval_ids!r})))"
    )


def burst(
    processes: Processes,
    base_url: str,
    *,
    approvals: int,
    clients: int,
    keep_alive: bool = True,
    check_before_reuse: bool = True,
) -> dict[str, Any]:
    """Seed, load every client's page, release all clicks together; return the figures."""
    seeded = seed(processes, approvals=approvals, clients=clients)
    approval_ids = seeded["approvals"]
    prepared: list[tuple[Client, str, dict[str, str]]] = []

    def load(index: int) -> tuple[Client, str, dict[str, str]]:
        client = Client(
            base_url, timeout=300, keep_alive=keep_alive, check_before_reuse=check_before_reuse
        )
        client.use_session(seeded["sessions"][index])
        path = f"/approvals/{approval_ids[index % len(approval_ids)]}/"
        page, token = client.form_token(path)
        version = VERSION_RE.search(page)
        if version is None:
            raise DrillError(f"{path} shows no decision form to this approver")
        form = {
            "csrfmiddlewaretoken": token,
            "decision": "APPROVED",
            "comment": "",
            "version": version.group(1),
        }
        return client, path, form

    with ThreadPoolExecutor(max_workers=8) as pool:
        prepared = list(pool.map(load, range(clients)))

    tally = Tally()

    def click(client: Client, path: str, form: dict[str, str]):
        return lambda: tally.add(client.post(path, form))

    wall = run_at_once([click(*entry) for entry in prepared])
    result = outcome(processes, approval_ids)
    decided = sum(1 for status in result["status"].values() if status != "PENDING")
    return {
        "approvals": approvals,
        "clients": clients,
        "wall_s": round(wall, 2),
        **tally.summary(),
        "decided_approvals": decided,
        "decisions_audited": sorted(set(result["audited"].values())),
        "tally": tally,
        "result": result,
    }


def check(figures: dict[str, Any]) -> list[str]:
    """What went wrong, in words (empty when the drill held)."""
    problems = []
    tally: Tally = figures["tally"]
    if figures["decided_approvals"] != figures["approvals"]:
        problems.append(f"{figures['decided_approvals']} of {figures['approvals']} decided")
    if figures["decisions_audited"] != [1]:
        problems.append(f"decisions per approval: {figures['decisions_audited']}")
    if tally.server_errors:
        sample = tally.server_errors[0]
        problems.append(f"{len(tally.server_errors)} x 5xx, e.g. {sample.body[:300]!r}")
    if tally.dropped:
        problems.append(f"{len(tally.dropped)} dropped: {sorted({a.error for a in tally.dropped})}")
    wins = tally.statuses.get(302, 0)
    if wins != figures["approvals"]:
        problems.append(f"{wins} clicks answered 302 (a recorded decision)")
    others = {s for s in tally.statuses if s not in (302, 409, 503)}
    if others:
        problems.append(f"unexpected statuses {sorted(others, key=str)}")
    for answer in tally.answers:
        if answer.status == 503 and "retry-after" not in answer.headers:
            problems.append("a 503 without Retry-After")
            break
    return problems


# --- standalone: its own services and processes ----------------------------------------------


def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--approvals", type=int, default=1)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument(
        "--naive-clients",
        action="store_true",
        help="send on a kept connection without checking the server closed it meanwhile",
    )
    parser.add_argument(
        "--fresh-connections",
        action="store_true",
        help="a new connection per request instead of the page's kept-alive one",
    )
    options = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from tests.services import PgCluster

    with tempfile.TemporaryDirectory(prefix="drill-decisions-") as tmp:
        var_dir = Path(tmp)
        cluster = None
        if options.backend == "postgres":
            cluster = PgCluster(command_line={"max_connections": "200"}).start()
            cluster.create_database("portal")
            database_url = cluster.url("portal")
        else:
            database_url = f"sqlite:///{var_dir / 'portal.sqlite3'}"
        processes = Processes(
            portal_env(database_url=database_url, broker_url="filesystem://", var_dir=var_dir),
            var_dir,
        )
        try:
            started = time.monotonic()
            processes.manage("migrate", "--noinput")
            base_url = start_web(processes, sqlite=options.backend == "sqlite")
            print(f"set up in {time.monotonic() - started:.1f} s", file=sys.stderr)
            figures = burst(
                processes,
                base_url,
                approvals=options.approvals,
                clients=options.clients,
                keep_alive=not options.fresh_connections,
                check_before_reuse=not options.naive_clients,
            )
        finally:
            processes.stop_all()
            if cluster is not None:
                cluster.remove()
    problems = check(figures)
    report = {k: v for k, v in figures.items() if k not in ("tally", "result")}
    report["backend"] = options.backend
    report["keep_alive"] = not options.fresh_connections
    report["problems"] = problems
    print(json.dumps(report, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(_main())
