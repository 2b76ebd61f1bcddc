"""Calendar fixtures: a calm policy, windows and approved changes scheduled into them.

Names start with ``cal_`` so they never clash with the execution tests' helpers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from changes.models import Category, State
from maintenance.models import MaintenancePolicy, MaintenanceWindow, ScheduledChange, WindowType
from tests.factories import ChangeRequestFactory, ComponentFactory


@pytest.fixture
def cal_component(db):
    return ComponentFactory(name="calendar-postgres")


@pytest.fixture
def cal_routine_policy(db) -> MaintenancePolicy:
    return MaintenancePolicy.objects.get(type=WindowType.ROUTINE)


@pytest.fixture
def cal_window(db):
    """A window straight in the table (generation has its own tests)."""

    def make(start: datetime, *, type: str = WindowType.ROUTINE, minutes: int = 240, **kwargs):
        kwargs.setdefault("notification_offsets", [1440, 60] if type == "ROUTINE" else [60])
        kwargs.setdefault("title", f"{type.title()} window {start:%Y-%m-%d}")
        return MaintenanceWindow.objects.create(
            type=type, start=start, duration_minutes=minutes, **kwargs
        )

    return make


@pytest.fixture
def cal_slot(db, requester, tenant, cal_component, operator):
    """An approved change placed in a window (a ScheduledChange row), like scheduling does."""

    def make(window: MaintenanceWindow, *, title: str, tenants=None, requester_=None, minutes=30):
        change = ChangeRequestFactory(
            title=title,
            requester=requester_ or requester,
            tenants=[tenant] if tenants is None else tenants,
            components=[cal_component],
            state=State.SCHEDULED,
            category=Category.STANDARD,
            risk_level="LOW",
            risk_score=10,
            window_minutes=minutes,
        )
        position = window.scheduled_changes.count() + 1
        ScheduledChange.objects.create(
            window=window,
            change=change,
            position=position,
            planned_start=window.start + timedelta(minutes=minutes * (position - 1)),
            planned_minutes=minutes,
            scheduled_by=operator,
        )
        return change

    return make
