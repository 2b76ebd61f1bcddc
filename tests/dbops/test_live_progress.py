"""Live progress of a long statement (issue 8, item 16), with a real worker: while a
VACUUM works, the run page shows a progress bar with the phase, blocks done of total and
the time it has been running, as ``pg_stat_progress_vacuum`` reports them; afterwards
the run keeps the phases and the rising percentages it went through, and its page and
the window's report show them, with the verification figures (item 8c).

The VACUUM is slowed the way a busy server slows it: cost-based delay, set on the
test's own target database (never on the server), so it is observed for seconds.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from psycopg import sql

from maintenance.models import ProcedureRun
from tests.factories import ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    run_in_open_window,
    wait_until,
    with_procedure,
)

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HTTP_HX_REQUEST": "true"}


def _slow_vacuum_table(target_db) -> None:
    target_db.run(
        "CREATE TABLE big_claims (id int, note text) WITH (autovacuum_enabled = false)",
        "INSERT INTO big_claims SELECT g, repeat('x', 200) FROM generate_series(1, 80000) g",
        "CREATE INDEX big_claims_id ON big_claims (id)",
        "DELETE FROM big_claims WHERE id % 2 = 0",
    )
    with target_db.connect() as conn:
        for name, value in (("vacuum_cost_delay", "100ms"), ("vacuum_cost_limit", "200")):
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(target_db.name), sql.Identifier(name), sql.Literal(value)
                )
            )


def _detail(html: str) -> str | None:
    match = re.search(r'data-testid="progress-detail">([^<]*)<', html)
    return match.group(1).strip() if match else None


@pytest.mark.worker
def test_a_long_vacuum_shows_its_phase_blocks_and_time_and_keeps_what_it_went_through(
    celery_worker, settings, target_db, make_target, requester, operator, tenant
):
    settings.RUN_HEARTBEAT_SECONDS = 1
    calm_calendar()
    _slow_vacuum_table(target_db)
    target = make_target()
    change = with_procedure(
        approved_change(requester, tenant, ComponentFactory(name="claims-db"), title="VACUUM"),
        operator,
        "db_vacuum",
        target=str(target.pk),
        tables=["public.big_claims"],
    )
    window = run_in_open_window([change], operator).window
    run = wait_until(
        lambda: ProcedureRun.objects.filter(change=change, status="RUNNING").first(),
        timeout=60,
        what="the VACUUM run to start",
    )
    page = Client()
    page.force_login(operator)
    url = reverse("maintenance:run", args=[run.pk])

    # What the operator's page shows while the statement works, polled as htmx does.
    shown: list[str] = []

    def finished() -> bool:
        html = page.get(url, **HTMX).content.decode()
        detail = _detail(html)
        if detail and "blocks" in detail:
            shown.append(detail)
        return ProcedureRun.objects.filter(pk=run.pk, status__in=ProcedureRun.FINISHED).exists()

    wait_until(finished, timeout=120, interval=0.5, what="the VACUUM to finish")

    run.refresh_from_db()
    assert run.status == ProcedureRun.Status.SUCCEEDED, run.error
    assert shown, "the page never showed the statement's progress"
    assert all(
        re.match(r"\d+% · public\.big_claims [a-z ]+ · \d+ of \d+ blocks · running for", d)
        for d in shown
    ), shown
    percents = [int(d.split("%")[0]) for d in shown]
    assert max(percents) > min(percents), shown  # the bar moved while it was watched

    log = run.result["progress_log"]
    assert log[0]["table"] == "public.big_claims" and log[0]["phase"] == "scanning heap"
    by_phase: dict[str, list[float]] = {}
    for entry in log:
        by_phase.setdefault(entry["phase"], []).append(entry["percent"])
    assert "vacuuming heap" in by_phase, log  # the dead rows' pages, after the scan
    rising = [p for p, seen in by_phase.items() if len(seen) >= 2 and seen[-1] > seen[0]]
    assert rising, log  # a phase observed at several rising percentages
    assert all(seen == sorted(seen) for seen in by_phase.values()), log
    assert [e["seconds"] for e in log] == sorted(e["seconds"] for e in log)

    # Kept: the run's page and the window's report show what it went through.
    html = page.get(url).content.decode()
    assert "Progress as observed" in html and "scanning heap" in html
    report = page.get(reverse("maintenance:report", args=[window.pk])).content.decode()
    assert "Progress as observed" in report and "scanning heap" in report
    # And the verification figures (issue 8, item 8c): dead tuples before and after.
    assert "Verification: statistics before and after" in report
    assert re.search(r"<td>public\.big_claims</td><td>40,?000</td><td>0</td>", report), report
