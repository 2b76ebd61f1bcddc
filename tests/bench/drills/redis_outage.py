"""Drill: the broker (a Redis without persistence) stops while changes are submitted.

Signed-in requesters keep submitting new changes through the real gunicorn (create and
submit in one click); each submit asks, through the outbox, for an e-mail to every
SECURITY approver. Redis is stopped for the outage and started again empty, as a Redis
without persistence comes back. A real worker and beat (whose relay sends again what
the broker lost) run throughout. Expected: every e-mail sent exactly once, every outbox
row done, no 5xx, every submit answered in under a second.

    .venv/bin/python -m tests.bench.drills.redis_outage --outage 20 --clients 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.drills.harness import (
    Client,
    Processes,
    Tally,
    mail_sent,
    portal_env,
    start_runportal,
)
from tests.bench.drills.pg_restart import change_form

SUBMIT_GOAL_SECONDS = 1.0
APPROVERS = 2
# The relay runs every 10 s (beat); lost messages are sent again 5 s after publishing.
DRILL_ENV = {"OUTBOX_REDELIVER_SECONDS": "5", "RUNPORTAL_STOP_GRACE_SECONDS": "5"}


class Submitters:
    def __init__(self, base_url: str, seeded: dict[str, Any]) -> None:
        self.base_url = base_url
        self.seeded = seeded
        self.tally = Tally()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.during_outage = Tally()
        self.outage = threading.Event()
        self.began = time.monotonic()
        self.timeline: list[tuple[float, float, int | None]] = []  # (start, seconds, status)
        self.lock = threading.Lock()
        self.warm_up: list = []

    def _run(self, index: int) -> None:
        client = Client(self.base_url, timeout=30)
        client.use_session(self.seeded["sessions"][index])
        _, token = client.form_token("/changes/new/")
        n = 0
        while not self.stop.is_set():
            n += 1
            form = change_form(
                token,
                title=f"drill {self.seeded['run']} c{index} s{n}",
                tenant=self.seeded["tenant"],
                component=self.seeded["component"],
            )
            form.update(type="SECURITY", priority="MEDIUM", action="submit")
            in_outage = self.outage.is_set()
            started = time.monotonic() - self.began
            answer = client.post("/changes/new/", form)
            if n == 1:
                # A fresh web process's first submit also imports and connects what every
                # later one reuses; it is counted for the e-mails, not for the timing.
                self.warm_up.append(answer)
                continue
            self.tally.add(answer)
            with self.lock:
                self.timeline.append((round(started, 2), round(answer.seconds, 3), answer.status))
            if in_outage and self.outage.is_set():
                self.during_outage.add(answer)

    def start(self) -> None:
        for index in range(len(self.seeded["sessions"])):
            thread = threading.Thread(target=self._run, args=(index,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def seed(processes: Processes, *, clients: int) -> dict[str, Any]:
    return processes.python(
        "from tests.bench.drills import seed\n"
        f"print(json.dumps(seed.requesters(clients={clients}, approvers={APPROVERS})))"
    )


def drill(
    processes: Processes,
    redis,
    base_url: str,
    seeded: dict[str, Any],
    *,
    outage: float,
    before: float,
    after: float,
    settle_timeout: float = 180,
) -> dict[str, Any]:
    """Needs web, worker and beat running on ``redis``; returns the figures."""
    since = datetime.now(UTC).isoformat()
    submitters = Submitters(base_url, seeded)
    submitters.start()
    try:
        time.sleep(before)  # submitters run at their own pace; these only time the outage
        submitters.outage.set()
        stopped = time.monotonic()
        outage_began = stopped - submitters.began
        redis.stop()
        time.sleep(outage)
        redis.start()
        outage_s = time.monotonic() - stopped
        submitters.outage.clear()
        time.sleep(after)
    finally:
        submitters.finish()
    finished = time.monotonic()
    settled = processes.python(
        "from tests.bench.drills import seed\n"
        f"print(json.dumps(seed.outbox_settled(since={since!r}, timeout={settle_timeout})))"
    )
    settle_s = time.monotonic() - finished
    expected = [tuple(pair) for pair in settled.pop("expected_mail")]
    sent = mail_sent(processes.var_dir / "mail")
    tally = submitters.tally
    warm_up_ok = sum(a.status == 302 for a in submitters.warm_up)
    submitted = tally.statuses.get(302, 0) + warm_up_ok
    return {
        "outage_s": round(outage_s, 1),
        "submits": len(tally.answers) + len(submitters.warm_up),
        "warm_up_submits_s": [round(a.seconds, 3) for a in submitters.warm_up],
        "submitted": submitted,
        "submits_during_outage": len(submitters.during_outage.answers),
        "statuses": tally.summary()["statuses"],
        "server_errors": len(tally.server_errors)
        + sum(a.status is not None and a.status >= 500 for a in submitters.warm_up),
        "dropped": len(tally.dropped),
        "slowest_submit_s": round(tally.slowest, 3),
        "slowest_submit_during_outage_s": round(submitters.during_outage.slowest, 3),
        "median_submit_s": _quantile(tally, 0.5),
        "p95_submit_s": _quantile(tally, 0.95),
        "median_submit_during_outage_s": _quantile(submitters.during_outage, 0.5),
        "submits_over_1s": sum(a.seconds >= SUBMIT_GOAL_SECONDS for a in tally.answers),
        "emails_expected": len(expected),
        "emails_missing": sum(1 for pair in set(expected) if sent[pair] == 0),
        "emails_duplicated": sum(1 for pair in set(expected) if sent[pair] > 1),
        "emails_unexpected": sum(1 for pair in sent if pair not in set(expected)),
        "settled_after_s": round(settle_s, 1),
        **settled,
        "sample_error": next((a.body[:300] for a in tally.server_errors), ""),
        "outage_window_s": [round(outage_began, 2), round(outage_began + outage_s, 2)],
        "slowest_submits": sorted(submitters.timeline, key=lambda t: -t[1])[:5],
    }


def _quantile(tally: Tally, q: float) -> float:
    times = sorted(a.seconds for a in tally.answers)
    return round(times[min(len(times) - 1, int(q * len(times)))], 3) if times else 0.0


def check(figures: dict[str, Any]) -> list[str]:
    problems = []
    for key in (
        "server_errors",
        "dropped",
        "submits_over_1s",
        "emails_missing",
        "emails_duplicated",
        "emails_unexpected",
        "undone",
        "given_up",
    ):
        if figures[key]:
            problems.append(f"{key}: {figures[key]}")
    if figures["submitted"] == 0 or figures["submits_during_outage"] == 0:
        problems.append("nothing was submitted during the outage")
    if figures["emails_expected"] != figures["submitted"] * APPROVERS:
        problems.append(
            f"{figures['emails_expected']} notifications for {figures['submitted']} submits"
        )
    return problems


def start_stack(processes: Processes) -> str:
    """Web, worker and beat under runportal, as `make run` and a deployment run them."""
    return start_runportal(processes)


def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", type=float, default=20.0)
    parser.add_argument("--before", type=float, default=5.0)
    parser.add_argument("--after", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=3)
    options = parser.parse_args()

    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from tests.services import PgCluster, RedisServer

    with (
        tempfile.TemporaryDirectory(prefix="drill-redis-") as tmp,
        PgCluster() as cluster,
        RedisServer() as redis,
    ):
        var_dir = Path(tmp)
        cluster.create_database("portal")
        env = portal_env(
            database_url=cluster.url("portal"),
            broker_url=redis.url(0),
            var_dir=var_dir,
            **DRILL_ENV,
        )
        processes = Processes(env, var_dir)
        try:
            processes.manage("migrate", "--noinput")
            seeded = seed(processes, clients=options.clients)
            base_url = start_stack(processes)
            figures = drill(
                processes,
                redis,
                base_url,
                seeded,
                outage=options.outage,
                before=options.before,
                after=options.after,
            )
            figures["problems"] = check(figures)
            if figures["problems"]:
                print(processes.log("runportal", tail=40000), file=sys.stderr)
        finally:
            processes.stop_all()
    print(json.dumps(figures, indent=2))
    return 1 if figures["problems"] else 0


if __name__ == "__main__":
    sys.exit(_main())
