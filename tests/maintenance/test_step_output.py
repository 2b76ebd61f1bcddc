"""A step's output arrives whole: the last lines a script printed before it exited, and
every chunk the heartbeat and the step's end flushed, in the order printed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
from django.db import connection

from maintenance.models import ProcedureRun, StepRun
from maintenance.processes import READ_INTERVAL, read_output
from maintenance.runner import _Live
from tests.factories import ProcedureRunFactory, StepRunFactory


def _read(script: str, *, timeout: float = 30, limit: int | None = None) -> tuple[str, bytes]:
    proc = subprocess.Popen(
        ["/bin/sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    got: list[bytes] = []
    try:
        ended = read_output(proc, timeout=timeout, on_chunk=got.append, limit=limit)
        if ended != "done":
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.stdout.close()
        proc.wait(timeout=10)
    return ended, b"".join(got)


def test_the_last_line_printed_just_before_the_exit_is_read():
    # A pause across waits that see nothing, then the last line and the exit: the line
    # is read. (The narrow case, a line landing between a wait that saw nothing and the
    # look at the exit, could not be made to happen on demand; the reader drains the
    # pipe after the exit for it.)
    ended, output = _read(f"printf 'first '; sleep {READ_INTERVAL * 2:.3f}; echo 'all good'")

    assert ended == "done"
    assert output == b"first all good\n"


def test_a_background_child_holding_the_pipe_is_not_waited_for():
    ended, output = _read("sleep 30 & echo bye", timeout=20)

    assert ended == "done"
    assert output == b"bye\n"


def test_past_the_limit_the_output_is_read_to_the_end_but_not_passed_on():
    # 200 KB, more than a pipe holds: the script would block if the rest were not read.
    ended, output = _read("head -c 200000 /dev/zero | tr '\\0' x; echo; echo end", limit=1000)

    assert ended == "done"
    assert output == b"x" * 1000


def test_a_script_that_outlives_its_timeout_is_reported_as_timed_out():
    ended, output = _read("echo started; sleep 30", timeout=1)

    assert ended == "timed out"
    assert output == b"started\n"


def test_a_stop_ends_the_reading():
    stop = threading.Event()
    stop.set()
    proc = subprocess.Popen(["/bin/sh", "-c", "sleep 30"], stdout=subprocess.PIPE)
    try:
        assert read_output(proc, timeout=30, on_chunk=lambda _c: None, stop=stop) == "stopped"
    finally:
        proc.kill()
        proc.stdout.close()
        proc.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_what_the_step_flushed_is_stored_when_its_flush_returns_though_the_heartbeat_flushes_too():
    run = ProcedureRunFactory(status=ProcedureRun.Status.RUNNING)
    step = StepRunFactory(run=run, status=StepRun.Status.RUNNING, output="")
    live = _Live(run, threading.Event(), [])
    live.step_id = step.pk
    printed = threading.Event()

    def heartbeat() -> None:
        # Flushes as often as it can while the lines are printed, as a short
        # RUN_HEARTBEAT_SECONDS would.
        try:
            while not printed.is_set():
                live.flush(whole_lines=True)
        finally:
            connection.close()

    beat = threading.Thread(target=heartbeat)
    beat.start()
    lines: list[str] = []
    try:
        for n in range(200):
            lines.append(f"line {n:04d}\n")
            live.log(lines[-1])
            time.sleep(0.002)  # a script prints over time, not all at once
            if n % 10 == 9:
                # The step's end flushes and then reads its output back (a
                # verification looks for "all good" in it): all of it must be there,
                # in order, whatever the heartbeat took a moment before.
                live.flush()
                step.refresh_from_db(fields=["output"])
                assert step.output == "".join(lines), f"after line {n}"
    finally:
        printed.set()
        beat.join(timeout=30)
