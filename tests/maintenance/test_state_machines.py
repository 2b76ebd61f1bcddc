"""Windows, executions and procedure runs move only through their transitions (issue 9,
item 6), as a change request does: their status is a protected django-fsm-2 field, a
transition from the wrong state is refused, and of two copies of one row the second to
save a transition loses (``ConcurrentTransitionMixin``) instead of overwriting the first.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from maintenance.models import (
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceWindow,
    ProcedureRun,
    WindowType,
)
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def window():
    return MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE, start=timezone.now() + timedelta(days=1), duration_minutes=60
    )


@pytest.fixture
def execution(window):
    return MaintenanceExecution.objects.create(window=window, planned_at=window.start)


@pytest.fixture
def run(execution, requester):
    change = ChangeRequestFactory(requester=requester)
    item = ChangeProcedure.objects.create(
        change=change, position=1, kind="manual_checklist", params={}, added_by=requester
    )
    return ProcedureRun.objects.create(
        procedure=item, change=change, execution=execution, idempotency_key=f"fsm-{item.pk}"
    )


def _machines(window, execution, run):
    """Each row, a status it may not be set to directly, and a legal then an illegal move."""
    return [
        (window, "IN_PROGRESS", "start_execution", "approve"),
        (execution, "COMPLETED", "begin", "begin"),
        (run, "SUCCEEDED", "queue", "succeed"),
    ]


def test_a_status_cannot_be_assigned_directly(window, execution, run):
    for row, status, _, _ in _machines(window, execution, run):
        loaded = type(row).objects.get(pk=row.pk)
        with pytest.raises(AttributeError, match="Direct status modification is not allowed"):
            loaded.status = status
        assert type(row).objects.get(pk=row.pk).status == row.status


def test_a_transition_from_the_wrong_state_is_refused(window, execution, run):
    for row, _, legal, illegal in _machines(window, execution, run):
        loaded = type(row).objects.get(pk=row.pk)
        getattr(loaded, legal)()
        loaded.save()
        with pytest.raises(TransitionNotAllowed):
            getattr(loaded, illegal)()


def test_of_two_copies_the_second_to_save_a_transition_loses(window, execution, run):
    for row, _, legal, _ in _machines(window, execution, run):
        first, second = (type(row).objects.get(pk=row.pk) for _ in range(2))
        getattr(first, legal)()
        first.save()
        getattr(second, legal)()
        with pytest.raises(ConcurrentTransition), transaction.atomic():
            second.save()
