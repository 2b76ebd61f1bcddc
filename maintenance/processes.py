"""Process groups a procedure step started: whether one lives, and ending it."""

from __future__ import annotations

import os
import signal
import time


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
