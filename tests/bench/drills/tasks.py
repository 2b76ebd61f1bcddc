"""Tasks only the drills use, loaded by a worker started with CELERY_EXTRA_IMPORTS."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task


@shared_task(name="drills.hold", acks_late=True)
def hold(marker: str, seconds: float) -> int:
    """Stand in for a long procedure: say it started (its pid), then keep the worker busy."""
    Path(marker).write_text(str(os.getpid()))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
    return os.getpid()
