"""A worker killed or stopped in the middle of a script (issue 16, items 3 and 4).

The script runs in a session of its own, so killing the worker does not reach it. The
step records what it started (pid, process group, host): the reaper ends that group
before it marks the run INTERRUPTED, and a retry refuses to start a second copy while
the first lives. A worker told to stop lets the run go on for its grace period, then
ends the script and marks the run INTERRUPTED, instead of holding the stop for hours or
leaving the script running unowned. Real worker processes, as runportal starts them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from maintenance.models import MaintenanceWindow, ProcedureRun, StepRun
from maintenance.services import (
    execution_advance,
    run_retry,
    runs_reap_stale,
    slot_create,
    window_start,
)
from portal.errors import Conflict
from tests.bench.drills.harness import Processes, portal_env, start_worker, wait_for
from tests.factories import ComponentFactory, UserFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    with_procedure,
)

pytestmark = pytest.mark.xdist_group("worker_stop_drill")

# Sleeps a minute unless the test has left a "quick" file beside it; records its pid.
SCRIPT = """#!/bin/sh
echo "$PORTAL_RUN_ID $$" >> "$(dirname "$0")/started.log"
if [ -e "$(dirname "$0")/quick" ]; then echo quick; exit 0; fi
echo sleeping
sleep 60
echo woke
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def scripts(tmp_path, settings) -> Path:
    directory = tmp_path / "scripts"
    directory.mkdir()
    path = directory / "long.sh"
    path.write_text(SCRIPT)
    path.chmod(0o755)
    settings.MAINTENANCE_SCRIPTS_DIR = str(directory)
    return directory


@pytest.fixture
def worker_env(transactional_db, tmp_path, scripts) -> Iterator[Processes]:
    db = connection.settings_dict
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    processes = Processes(
        portal_env(
            database_url=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            broker_url="filesystem://",
            var_dir=var_dir,
            MAINTENANCE_SCRIPTS_DIR=str(scripts),
            RUN_HEARTBEAT_SECONDS="1",
            RUN_STALE_SECONDS="5",
            WORKER_STOP_GRACE_SECONDS="3",
        ),
        var_dir,
    )
    try:
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture
def queued_run(operator, requester, tenant, scripts) -> ProcedureRun:
    calm_calendar()
    change = approved_change(requester, tenant, ComponentFactory(name="batch-host"), title="Batch")
    change = with_procedure(
        change, requester, "maintenance_script", script="long.sh", timeout_seconds=300
    )
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        type="ROUTINE", start=now - timedelta(minutes=1), duration_minutes=60, title="Drill"
    )
    # Scheduled as it was before the window opened; it runs now, in the open window.
    slot_create(change=change, window=window, by=operator, now=now - timedelta(minutes=5))
    execution = window_start(window=window, by=operator)
    execution_advance(execution_id=execution.pk)
    return ProcedureRun.objects.get(change=change, status=ProcedureRun.Status.QUEUED)


def _deliver(processes: Processes, run_id: int) -> None:
    """Publish the run's task on the worker's own broker, as the outbox does."""
    processes.python(
        "from portal.celery import app\n"
        f"app.send_task('maintenance.execute_run', args=[{run_id}])\n"
        "print(json.dumps(True))"
    )


def _script_pid(run: ProcedureRun) -> int:
    def recorded():
        step = StepRun.objects.filter(run=run, process_pid__isnull=False).first()
        return step.process_pid if step else None

    pid = wait_for(recorded, timeout=60, what="the step recording its script's pid")
    assert _alive(pid)
    return pid


def test_a_killed_workers_script_is_ended_and_a_retry_runs_one_copy(
    worker_env, queued_run, scripts, make_user, tenant
):
    start_worker(worker_env)
    _deliver(worker_env, queued_run.pk)
    pid = _script_pid(queued_run)
    step = StepRun.objects.get(run=queued_run, process_pid=pid)
    assert step.process_group == pid and step.process_host

    os.killpg(worker_env.procs["worker"].pid, signal.SIGKILL)
    worker_env.procs["worker"].wait(timeout=10)
    assert _alive(pid), "the script lives on in its own session after the worker died"

    later = timezone.now() + timedelta(minutes=5)
    assert runs_reap_stale(now=later) == 1
    queued_run.refresh_from_db()
    assert queued_run.status == ProcedureRun.Status.INTERRUPTED
    assert not _alive(pid), "the reaper ended the script's process group"

    (scripts / "quick").write_text("")
    other_operator = make_user("operator-2", ["OPERATIONS"], tenants=[tenant])
    retry = run_retry(run=queued_run, by=other_operator)
    execution_advance(execution_id=queued_run.execution_id)
    retry.refresh_from_db()
    assert retry.status == ProcedureRun.Status.QUEUED
    start_worker(worker_env)
    _deliver(worker_env, retry.pk)
    wait_for(
        lambda: ProcedureRun.objects.get(pk=retry.pk).status == ProcedureRun.Status.SUCCEEDED,
        timeout=60,
        what="the retry to succeed",
    )
    started = (scripts / "started.log").read_text().splitlines()
    assert [line.split()[0] for line in started] == [str(queued_run.pk), str(retry.pk)]


def test_a_retry_is_refused_while_the_interrupted_script_still_runs(worker_env, queued_run):
    start_worker(worker_env)
    _deliver(worker_env, queued_run.pk)
    pid = _script_pid(queued_run)
    os.killpg(worker_env.procs["worker"].pid, signal.SIGKILL)
    worker_env.procs["worker"].wait(timeout=10)
    # As if the script had been started on another host: neither the reaper nor a
    # retry here can end it, so the retry is refused while it may live.
    StepRun.objects.filter(run=queued_run).update(process_host="another-host")
    runs_reap_stale(now=timezone.now() + timedelta(minutes=5))
    queued_run.refresh_from_db()
    assert "may still run" in queued_run.error
    assert _alive(pid)
    operator = UserFactory(username="operator-3", roles=["OPERATIONS"])
    with pytest.raises(Conflict, match="a second copy is not started"):
        run_retry(run=queued_run, by=operator)
    assert ProcedureRun.objects.filter(procedure=queued_run.procedure).count() == 1
    os.killpg(pid, signal.SIGKILL)


def test_a_stopping_worker_ends_the_script_after_its_grace_and_marks_the_run(
    worker_env, queued_run
):
    start_worker(worker_env)
    _deliver(worker_env, queued_run.pk)
    pid = _script_pid(queued_run)
    worker = worker_env.procs["worker"]

    stopped_at = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)  # a warm shutdown, as runportal asks first
    worker.wait(timeout=30)
    took = time.monotonic() - stopped_at

    assert not _alive(pid)
    queued_run.refresh_from_db()
    assert queued_run.status == ProcedureRun.Status.INTERRUPTED
    assert "worker is shutting down" in queued_run.error
    # The grace period is 3 s; the stop did not wait for the 60 s script.
    assert took < 25, took
