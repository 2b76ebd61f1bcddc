"""A worker killed mid-run: the reaper reports it, and nothing runs again by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from maintenance.models import MaintenanceIssue, ProcedureRun
from maintenance.services import runs_reap_stale, window_start
from portal.audit import verify_chain
from portal.models import AuditEvent
from tests.factories import ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    ran_lines,
    schedule_all,
    wait_until,
    window_opening_soon,
    with_procedure,
    write_scripts,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
ROOT = Path(__file__).resolve().parents[2]


def _worker_env(scripts: Path) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "PORTAL_ENV": "test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MAINTENANCE_SCRIPTS_DIR": str(scripts),
        "RUN_HEARTBEAT_SECONDS": "1",
    }


def _start_worker(scripts: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--hostname",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=_worker_env(scripts),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _kill_scripts(scripts: Path) -> None:
    subprocess.run(["pkill", "-9", "-f", str(scripts)], check=False)


@pytest.fixture
def scripts(tmp_path, settings):
    path = write_scripts(tmp_path / "scripts")
    settings.MAINTENANCE_SCRIPTS_DIR = str(path)
    yield path
    _kill_scripts(path)


def test_a_killed_worker_leaves_an_interrupted_run_that_nothing_reruns(
    scripts, requester, operator, tenant
):
    from portal.celery import app

    app.control.purge()
    calm_calendar()
    change = with_procedure(
        approved_change(
            requester, tenant, ComponentFactory(name="claims-api"), title="Long maintenance"
        ),
        requester,
        "maintenance_script",
        script="slow.sh",
        timeout_seconds="300",
    )
    window = window_opening_soon(seconds=2)
    schedule_all([change], window, operator)
    wait_until(lambda: window.is_open(), timeout=10, what="the window to open")

    worker = _start_worker(scripts, "doomed")
    try:
        window_start(window=window, by=operator)
        run = wait_until(
            lambda: ProcedureRun.objects.filter(change=change, status="RUNNING").first(),
            timeout=60,
            what="the run to start on the worker",
        )
        wait_until(lambda: ran_lines(scripts), what="the script to start")
        os.killpg(worker.pid, signal.SIGKILL)  # the worker dies mid-run, no goodbye
        worker.wait(timeout=10)
    finally:
        _kill(worker)

    later = timezone.now() + timedelta(seconds=settings.RUN_STALE_SECONDS + 5)
    assert runs_reap_stale(now=later) == 1
    run.refresh_from_db()
    assert run.status == "INTERRUPTED"
    assert "will not be re-run" in run.error
    assert MaintenanceIssue.objects.filter(kind="INTERRUPTED", change=change).exists()
    assert AuditEvent.objects.filter(action="run.interrupted").count() == 1
    assert runs_reap_stale(now=later) == 0  # reported once

    # A new worker comes up and the task is delivered again: still nothing re-runs.
    fresh = _start_worker(scripts, "fresh")
    try:
        app.send_task("maintenance.execute_run", args=[run.pk])
        app.send_task("maintenance.advance_execution", args=[run.execution_id])
        # Queued after the duplicates on a one-at-a-time worker: once this ping has run,
        # the duplicates have been handled.
        app.send_task("portal.worker_ping", args=["after-duplicates"])
        wait_until(
            lambda: AuditEvent.objects.filter(
                action="worker.ping", object_id="after-duplicates"
            ).exists(),
            timeout=60,
            what="the fresh worker to handle the duplicates",
        )
    finally:
        _kill(fresh)
    run.refresh_from_db()
    assert run.status == "INTERRUPTED"
    assert ProcedureRun.objects.filter(change=change).count() == 1
    assert len(ran_lines(scripts)) == 1
    assert verify_chain().intact
