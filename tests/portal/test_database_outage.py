"""A lost database is answered with a friendly 503, never a traceback or a false 400.

The drill restarts a private PostgreSQL cluster under a real gunicorn while signed-in
clients read and write; the smaller tests pin the pieces (DEBUG off by default, the
session store's verdict on a lost database).
"""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest
from django.contrib.sessions.backends.base import UpdateError
from django.db import OperationalError, connection

from portal.sessions import SessionStore
from tests.bench.drills import pg_restart
from tests.bench.drills.harness import BASE_DIR, Processes, portal_env, start_web

pytestmark = pytest.mark.xdist_group("database_outage")


def test_a_postgresql_restart_under_load_loses_no_write_and_shows_no_debug_page(
    throwaway_cluster, tmp_path
):
    throwaway_cluster.create_database("portal")
    processes = Processes(
        portal_env(
            database_url=throwaway_cluster.url("portal"),
            broker_url="filesystem://",
            var_dir=tmp_path,
        ),
        tmp_path,
    )
    try:
        processes.manage("migrate", "--noinput")
        seeded = processes.python(
            "from tests.bench.drills import seed\nprint(json.dumps(seed.requesters(clients=4)))"
        )
        base_url = start_web(processes)
        figures = pg_restart.drill(
            processes, throwaway_cluster, base_url, seeded, restarts=1, warm=1.5, settle=4.0
        )
    finally:
        processes.stop_all()

    print(json.dumps({k: v for k, v in figures.items() if k != "sample_503"}))
    # No write lost, no debug page, no 500: as the drill checks them. Recovery is bounded
    # here at 10 s, not the drill's 2 s goal: the suite shares two cores with a hundred
    # other tests (a clean run measured 2.18 s), and the goal is the on-demand drill's
    # to measure (README, "Fault drills": 1.50, 1.58 and 1.83 s on an idle machine).
    assert pg_restart.check(figures, recovery_goal=10.0) == []
    assert figures["committed_writes"] > 0
    if figures["sample_503"]:
        assert "The portal is briefly unavailable" in figures["sample_503"]
        assert "Traceback" not in figures["sample_503"]


# --- the pieces ---------------------------------------------------------------------------


def _setting(env: dict, expression: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; print({expression})",
        ],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_debug_is_off_in_the_development_default_unless_asked_for(tmp_path):
    env = portal_env(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        broker_url="filesystem://",
        var_dir=tmp_path,
        PORTAL_ENV="development",
    )

    assert _setting(env, "settings.DEBUG") == "False"
    assert _setting({**env, "DEBUG": "1"}, "settings.DEBUG") == "True"


@pytest.mark.django_db(transaction=True)
def test_a_session_save_on_a_lost_database_raises_the_database_error_not_a_deleted_session():
    store = SessionStore()
    store["portal_seen_at"] = "2026-12-01T10:00:00+00:00"
    store.save(must_create=True)
    store["portal_seen_at"] = "2026-12-01T10:01:00+00:00"
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])

    try:
        with pytest.raises(OperationalError):
            store.save()
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_session_deleted_meanwhile_is_still_reported_as_deleted():
    store = SessionStore()
    store["portal_seen_at"] = "2026-12-01T10:00:00+00:00"
    store.save(must_create=True)
    SessionStore(session_key=store.session_key).delete()

    with pytest.raises(UpdateError):
        store.save()
