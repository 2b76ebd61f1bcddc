"""runportal keeps web, worker and beat running, and stops them all only when told to.

Real processes throughout: ``manage.py runportal`` on the test database and broker, the
worker killed with SIGKILL and SIGTERM as an operator or the OOM killer would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection

from portal.celery import app
from portal.models import WorkerHeartbeat
from tests.bench.drills.harness import BASE_DIR, Client, DrillError, free_port, portal_env
from tests.bench.drills.harness import wait_for as drill_wait_for

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("runportal")]


def wait_for(probe, *, what: str, timeout: float = 60.0):
    try:
        return drill_wait_for(probe, what=what, timeout=timeout)
    except DrillError as exc:
        pytest.fail(str(exc))


class Runportal:
    def __init__(self, tmp_path: Path, *, grace: int, cold: int) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "runportal.log"
        db = connection.settings_dict
        database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        self.env = portal_env(
            database_url=database_url,
            broker_url=settings.CELERY_BROKER_URL,
            var_dir=tmp_path,
            LOG_LEVEL="INFO",
            RUNPORTAL_STOP_GRACE_SECONDS=str(grace),
            RUNPORTAL_COLD_STOP_SECONDS=str(cold),
            CELERY_EXTRA_IMPORTS="tests.bench.drills.tasks",
            WORKER_HEARTBEAT_SECONDS="2",
        )
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "runportal", "--bind", f"127.0.0.1:{self.port}"],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.ps = psutil.Process(self.proc.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child(self, name: str) -> psutil.Process | None:
        marks = {"web": "gunicorn", "worker": " worker ", "beat": " beat "}
        for proc in self.ps.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                command = f" {' '.join(proc.cmdline())} "
                if marks[name] in command and proc.status() != psutil.STATUS_ZOMBIE:
                    return proc
        return None

    def everything(self) -> list[psutil.Process]:
        return self.ps.children(recursive=True)

    def web_answers(self) -> bool:
        try:
            return Client(self.base_url, timeout=5).get("/accounts/login/").status == 200
        except OSError:
            return False

    def worker_ready_since(self, moment: float) -> bool:
        beat = WorkerHeartbeat.objects.filter(hostname__startswith="portal-worker@").first()
        return beat is not None and beat.last_seen.timestamp() > moment

    def wait_ready(self) -> None:
        started = time.time()
        try:
            wait_for(self.web_answers, what="the web server answering")
            wait_for(lambda: self.worker_ready_since(started - 1), what="the worker ready")
            wait_for(lambda: self.child("beat"), what="beat running")
        except BaseException:
            print(self.log()[-6000:])
            raise

    def kill_everything(self) -> None:
        for proc in [self.ps, *self.everything()] if self.proc.poll() is None else []:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


@pytest.fixture
def runportal(transactional_db, tmp_path) -> Iterator:
    started: list[Runportal] = []

    def start(*, grace: int = 30, cold: int = 10) -> Runportal:
        app.control.purge()
        portal = Runportal(tmp_path, grace=grace, cold=cold)
        started.append(portal)
        portal.wait_ready()
        return portal

    yield start
    for portal in started:
        portal.kill_everything()
    app.control.purge()


def gone(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


# --- a child that exits is started again; the others never notice --------------------------


def test_a_worker_that_exits_is_restarted_with_a_growing_back_off_while_web_and_beat_stay_up(
    runportal,
):
    """Killed (the OOM killer's SIGKILL), then its successor stopped (SIGTERM, exit code 0)
    before it ran a minute: each is started again, the second after a longer back-off."""
    portal = runportal()
    web, beat, first = portal.child("web"), portal.child("beat"), portal.child("worker")
    pool = first.children()
    assert pool, "the worker runs a process pool"

    killed_at = time.time()
    os.kill(first.pid, signal.SIGKILL)
    second = wait_for(
        lambda: (w := portal.child("worker")) and w.pid != first.pid and w,
        what="a new worker process",
    )
    wait_for(lambda: portal.worker_ready_since(killed_at), what="the new worker ready")
    assert "worker exited unexpectedly (killed by SIGKILL)" in portal.log()
    assert gone(pool) == [], "the old worker's pool processes outlived it"

    os.kill(second.pid, signal.SIGTERM)
    third = wait_for(
        lambda: (w := portal.child("worker")) and w.pid not in (first.pid, second.pid) and w,
        what="a third worker",
    )

    log = portal.log()
    assert "worker exited unexpectedly (exit code 0)" in log
    assert log.index("restarting it in 2 s") < log.index("restarting it in 4 s")
    assert "starting worker again (restart 2)" in log
    assert portal.child("web").pid == web.pid
    assert portal.child("beat").pid == beat.pid
    assert portal.web_answers()
    assert portal.proc.poll() is None
    assert third.is_running()


# --- only runportal's own stop stops them all ------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_runportal_stops_every_child_promptly_when_idle(runportal, sig):
    portal = runportal(grace=30)
    everything = portal.everything()
    assert len(everything) >= 4  # gunicorn master and workers, celery and its pool, beat

    started = time.monotonic()
    portal.proc.send_signal(sig)
    portal.proc.wait(timeout=45)
    elapsed = time.monotonic() - started

    assert portal.proc.returncode == 0
    assert elapsed < 15, f"an idle stop took {elapsed:.1f} s"
    assert gone(everything) == []
    assert "Stopped web, worker and beat." in portal.log()


def test_a_stop_gives_a_busy_worker_the_grace_period_then_a_cold_shutdown(runportal, tmp_path):
    grace, cold = 4, 4
    portal = runportal(grace=grace, cold=cold)
    marker = tmp_path / f"hold-{uuid.uuid4().hex}"
    app.send_task("drills.hold", args=[str(marker), 300])
    wait_for(marker.exists, what="the long task running")
    task_pid = int(marker.read_text())
    everything = portal.everything()
    assert task_pid in {p.pid for p in everything}

    started = time.monotonic()
    portal.proc.send_signal(signal.SIGTERM)
    portal.proc.wait(timeout=grace + cold + 30)
    elapsed = time.monotonic() - started

    assert grace <= elapsed < grace + cold + 5, f"the stop took {elapsed:.1f} s"
    assert gone(everything) == []
    assert not psutil.pid_exists(task_pid) or psutil.Process(task_pid).status() == "zombie"
    assert "the worker is still busy; cold shutdown" in portal.log()
    assert portal.proc.returncode == 0


def test_the_children_stop_when_runportal_itself_is_killed(runportal):
    portal = runportal(grace=30)
    everything = portal.everything()

    portal.proc.kill()  # SIGKILL: runportal cannot stop them itself
    portal.proc.wait(timeout=10)

    # Each child asked the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG).
    wait_for(lambda: gone(everything) == [], what="every child gone", timeout=30)
