"""Processes a procedure step started: reading their output to the end, whether their
group lives, and ending it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable

# How long one wait for output lasts before the timeout, the stop and the exit are
# looked at again.
READ_INTERVAL = 0.5


def read_output(
    proc: subprocess.Popen,
    *,
    timeout: float,
    on_chunk: Callable[[bytes], None],
    stop: threading.Event | None = None,
    limit: int | None = None,
) -> str:
    """Pass what ``proc`` prints to ``on_chunk`` until it is done: "done", "timed out"
    or "stopped" (the caller ends the group for the last two). Past ``limit`` bytes the
    output is still read (a full pipe would block the process) but no longer passed on.

    Done is the end of the pipe, or the process's exit once what it wrote before exiting
    has been read: a background child it left holding the pipe is not waited for, but
    the last lines a script printed just before it exited are never dropped (they can
    arrive between a wait that saw nothing and the look at the exit)."""
    started = time.monotonic()
    exited = False
    passed = 0
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while True:
            if time.monotonic() - started > timeout:
                return "timed out"
            if stop is not None and stop.is_set():
                return "stopped"
            if sel.select(timeout=0 if exited else READ_INTERVAL):
                chunk = proc.stdout.read1(65536)
                if not chunk:
                    return "done"
                if limit is None or passed < limit:
                    piece = chunk if limit is None else chunk[: limit - passed]
                    passed += len(piece)
                    on_chunk(piece)
            elif exited:
                return "done"
            else:
                exited = proc.poll() is not None
    finally:
        sel.close()


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_process_group(pgid: int, *, grace: float = 5.0) -> bool:
    """SIGTERM the group, then SIGKILL what is left after ``grace`` seconds. True when
    the group is gone."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not process_group_alive(pgid):
                return True
            time.sleep(0.1)
    return not process_group_alive(pgid)
