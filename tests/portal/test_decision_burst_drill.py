"""Fifty approvers click at once: one decision per approval, clear conflicts, nothing dropped.

Real gunicorn started as runportal starts it, real signed-in sessions that loaded the
approval page and keep its connection open as a browser does, all clicks released
together. The clients here send on their kept connection without first checking it is
still open, as the simplest HTTP clients do: gunicorn's old 2-second keep-alive closed
those connections under them and the clicks were reset unanswered. The 1,000-click
drill is in tests/bench/drills/decisions.py (README, "Faults and drills").
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing

import pytest
from django.db import connection

from tests.bench.drills import decisions
from tests.bench.drills.harness import Client, Processes, portal_env, start_web

pytestmark = pytest.mark.xdist_group("decision_burst")
CLIENTS = 50


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[tuple[Processes, str]]:
    """What `make run` starts: SQLite, the file-system broker, the development default."""
    var_dir = tmp_path_factory.mktemp("burst-embedded")
    processes = Processes(
        portal_env(
            database_url=f"sqlite:///{var_dir / 'portal.sqlite3'}",
            broker_url="filesystem://",
            var_dir=var_dir,
            PORTAL_ENV="development",
        ),
        var_dir,
    )
    try:
        processes.manage("migrate", "--noinput")
        yield processes, start_web(processes, sqlite=True)
    finally:
        processes.stop_all()


@pytest.fixture
def on_postgresql(transactional_db, tmp_path) -> Iterator[tuple[Processes, str]]:
    db = connection.settings_dict
    processes = Processes(
        portal_env(
            database_url=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            broker_url="filesystem://",
            var_dir=tmp_path,
        ),
        tmp_path,
    )
    try:
        yield processes, start_web(processes)
    finally:
        processes.stop_all()


def burst(stack: tuple[Processes, str], approvals: int) -> dict:
    processes, base_url = stack
    figures = decisions.burst(
        processes, base_url, approvals=approvals, clients=CLIENTS, check_before_reuse=False
    )
    print(json.dumps({k: v for k, v in figures.items() if k not in ("tally", "result")}))
    return figures


def test_fifty_clicks_at_once_on_the_embedded_default_decide_each_approval_once(embedded):
    for approvals in (1, 20):
        figures = burst(embedded, approvals)

        assert decisions.check(figures) == []
        assert figures["statuses"] == {"302": approvals, "409": CLIENTS - approvals}


def test_fifty_clicks_at_once_on_postgresql_decide_each_approval_once(on_postgresql):
    for approvals in (1, 20):
        figures = burst(on_postgresql, approvals)

        assert decisions.check(figures) == []
        assert figures["statuses"] == {"302": approvals, "409": CLIENTS - approvals}


def test_the_embedded_default_serves_static_files_and_plain_error_pages_with_debug_off(
    embedded,
):
    _, base_url = embedded
    client = Client(base_url)

    css = client.get("/static/css/portal.css")
    missing = client.get("/no-such-page/")

    assert css.status == 200
    assert "text/css" in css.headers["content-type"]
    assert missing.status == 404
    assert "DEBUG = True" not in missing.body


def test_the_embedded_database_runs_in_wal_mode_so_readers_never_hold_up_a_writer(embedded):
    processes, _ = embedded
    database = processes.var_dir / "portal.sqlite3"

    with closing(sqlite3.connect(database, timeout=10)) as conn:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()

    assert mode == "wal"
