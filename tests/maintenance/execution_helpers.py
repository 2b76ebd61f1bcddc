"""Building blocks for execution tests: scripts, an open window, approved changes."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from changes.models import Category, ChangeRequest, State
from maintenance.models import MaintenancePolicy, MaintenanceWindow, WindowType
from maintenance.services import change_procedure_add, slot_create, window_start
from tests.factories import ChangeRequestFactory

SCRIPTS = {
    "succeed.sh": '#!/bin/sh\necho "run $PORTAL_RUN_ID" >> "$(dirname "$0")/ran.log"\n'
    'echo "step one"\nsleep "${1:-0}"\necho "all good"\n',
    "fail.sh": '#!/bin/sh\necho "fail $PORTAL_RUN_ID" >> "$(dirname "$0")/ran.log"\n'
    'echo "about to fail"\nexit 4\n',
    "undo.sh": '#!/bin/sh\necho "undo $PORTAL_RUN_ID" >> "$(dirname "$0")/ran.log"\n'
    'echo "undone"\n',
    "slow.sh": '#!/bin/sh\necho "slow $PORTAL_RUN_ID" >> "$(dirname "$0")/ran.log"\n'
    "echo started\nsleep 60\necho finished\n",
}


def write_scripts(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in SCRIPTS.items():
        path = directory / name
        path.write_text(body)
        path.chmod(0o755)
    return directory


def ran_lines(directory: Path) -> list[str]:
    log = directory / "ran.log"
    return log.read_text().splitlines() if log.exists() else []


def calm_calendar() -> None:
    """These tests are about execution, not the calendar: no blackout days today."""
    MaintenancePolicy.objects.update(end_of_month_days=0, holiday_country="", holiday_market="")


def window_opening_soon(*, seconds: int = 2, minutes: int = 60) -> MaintenanceWindow:
    return MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() + timedelta(seconds=seconds),
        duration_minutes=minutes,
        notification_offsets=[60],
        title="Test window",
    )


def approved_change(requester, tenant, component, *, title: str, minutes: int = 10):
    return ChangeRequestFactory(
        title=title,
        requester=requester,
        tenants=[tenant],
        components=[component],
        state=State.APPROVED,
        category=Category.STANDARD,
        risk_level="LOW",
        risk_score=10,
        window_minutes=minutes,
    )


def with_procedure(change: ChangeRequest, by, kind: str, **params) -> ChangeRequest:
    # Added before approval in real life; here the change is made approved directly, so
    # the procedure goes on first through the service, then the state is restored.
    ChangeRequest.objects.filter(pk=change.pk).update(state=State.DRAFT)
    change_procedure_add(
        change=ChangeRequest.objects.get(pk=change.pk), by=by, kind=kind, params=params
    )
    ChangeRequest.objects.filter(pk=change.pk).update(state=State.APPROVED)
    return ChangeRequest.objects.get(pk=change.pk)


def schedule_all(changes, window, operator) -> None:
    for change in changes:
        slot_create(change=ChangeRequest.objects.get(pk=change.pk), window=window, by=operator)


def open_now(window: MaintenanceWindow) -> None:
    """The clock reaches a window's start: it opens a second ago. A browser test schedules
    into a future window (scheduling refuses one already open), then lets time pass this
    way instead of waiting for the real clock."""
    MaintenanceWindow.objects.filter(pk=window.pk).update(
        start=timezone.now() - timedelta(seconds=1)
    )


def run_in_open_window(changes, operator, *, minutes: int = 60, **window_fields):
    """Schedule ``changes`` into a routine window (scheduling refuses one already open),
    open it now and start it as ``operator``: the execution, its worker tasks queued."""
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() + timedelta(hours=2),
        duration_minutes=minutes,
        notification_offsets=[60],
        **window_fields,
    )
    schedule_all(changes, window, operator)
    open_now(window)
    return window_start(window=MaintenanceWindow.objects.get(pk=window.pk), by=operator)


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.2, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what or predicate}")
