"""Scheduling an approved change: each refusal rule and the next-valid-slot suggestion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from changes.models import Category, ChangeRequest, State
from maintenance import scheduling
from maintenance.models import BlackoutPeriod, MaintenanceWindow, WindowType
from maintenance.services import (
    change_procedure_add,
    slot_create,
    slot_remove,
    windows_generate,
)
from portal.errors import Conflict, Invalid, NotAllowed
from portal.models import AuditEvent
from tests.factories import ChangeRequestFactory, ComponentFactory

pytestmark = pytest.mark.django_db

# Wednesday 2027-03-03: the Sundays after it are ordinary days (no holiday, not month end).
NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def component(db):
    return ComponentFactory(name="primary-postgres")


@pytest.fixture
def windows(db):
    return windows_generate(now=NOW)


def _approved(requester, tenant, component, *, category=Category.STANDARD, minutes=60, **kwargs):
    return ChangeRequestFactory(
        requester=requester,
        tenants=[tenant],
        components=[component],
        state=State.APPROVED,
        category=category,
        window_minutes=minutes,
        risk_level="LOW",
        risk_score=5,
        proposed_start=NOW + timedelta(days=2),
        **kwargs,
    )


def test_it_schedules_into_a_routine_window_and_moves_the_change(
    windows, requester, operator, tenant, component
):
    change = _approved(requester, tenant, component)
    slot = slot_create(change=change, window=windows[0], by=operator, now=NOW)
    assert slot.planned_start == windows[0].start
    assert ChangeRequest.objects.get(pk=change.pk).state == State.SCHEDULED
    assert AuditEvent.objects.filter(action="change.scheduled").exists()


def test_the_suggestion_is_the_next_valid_slot(windows, requester, operator, tenant, component):
    first = windows[0]
    filler = _approved(requester, tenant, component, minutes=200)
    slot_create(change=filler, window=first, by=operator, now=NOW)
    change = _approved(requester, tenant, ComponentFactory(name="other"), minutes=60)
    # 40 minutes left in the first window: the next valid slot is the second one.
    assert scheduling.next_valid_window(change, now=NOW) == windows[1]
    small = _approved(requester, tenant, ComponentFactory(name="third"), minutes=30)
    assert scheduling.next_valid_window(small, now=NOW) == first


def test_it_refuses_a_window_without_capacity(windows, requester, operator, tenant, component):
    slot_create(
        change=_approved(requester, tenant, component, minutes=200),
        window=windows[0],
        by=operator,
        now=NOW,
    )
    big = _approved(requester, tenant, ComponentFactory(name="x"), minutes=60)
    with pytest.raises(Invalid, match="Not enough capacity"):
        slot_create(change=big, window=windows[0], by=operator, now=NOW)
    assert AuditEvent.objects.filter(action="change.schedule_refused", outcome="DENIED").exists()
    assert ChangeRequest.objects.get(pk=big.pk).state == State.APPROVED


def test_it_refuses_a_blacked_out_window(
    windows, requester, operator, tenant, component, admin_user
):
    day = windows[0].start.date()
    BlackoutPeriod.objects.create(start_date=day, end_date=day, reason="Quarter close freeze")
    change = _approved(requester, tenant, component)
    with pytest.raises(Invalid, match=r"blacked out.*Quarter close freeze"):
        slot_create(change=change, window=windows[0], by=operator, now=NOW)


def test_a_blackout_exception_may_use_a_blacked_out_window(
    windows, requester, operator, tenant, component
):
    day = windows[0].start.date()
    BlackoutPeriod.objects.create(start_date=day, end_date=day, reason="Freeze")
    change = _approved(requester, tenant, component, blackout_exception=True)
    slot_create(change=change, window=windows[0], by=operator, now=NOW)


def test_a_standard_change_goes_into_routine_windows_only(requester, operator, tenant, component):
    emergency = MaintenanceWindow.objects.create(
        type=WindowType.EMERGENCY, start=NOW + timedelta(hours=3), duration_minutes=120
    )
    change = _approved(requester, tenant, component)
    with pytest.raises(Invalid, match="routine window only"):
        slot_create(change=change, window=emergency, by=operator, now=NOW)
    urgent = _approved(requester, tenant, component, category=Category.URGENT)
    slot_create(change=urgent, window=emergency, by=operator, now=NOW)


def test_it_refuses_an_overlap_on_the_same_component(
    windows, requester, operator, tenant, component
):
    routine = windows[0]
    slot_create(
        change=_approved(requester, tenant, component, minutes=120),
        window=routine,
        by=operator,
        now=NOW - timedelta(days=10),
    )
    emergency = MaintenanceWindow.objects.create(
        type=WindowType.EMERGENCY,
        start=routine.start + timedelta(minutes=30),
        duration_minutes=60,
    )
    urgent = _approved(requester, tenant, component, category=Category.EMERGENCY)
    with pytest.raises(Invalid, match="Overlaps CHG-"):
        slot_create(change=urgent, window=emergency, by=operator, now=NOW)
    elsewhere = _approved(
        requester, tenant, ComponentFactory(name="edge"), category=Category.EMERGENCY
    )
    slot_create(change=elsewhere, window=emergency, by=operator, now=NOW)


def test_only_operators_schedule_and_only_approved_changes(
    windows, requester, security, operator, tenant, component
):
    change = _approved(requester, tenant, component)
    with pytest.raises(NotAllowed):
        slot_create(change=change, window=windows[0], by=security, now=NOW)
    draft = ChangeRequestFactory(requester=requester, tenants=[tenant], components=[component])
    with pytest.raises(Conflict):
        slot_create(change=draft, window=windows[0], by=operator, now=NOW)


def test_unscheduling_is_audited_and_tells_the_stakeholders(
    windows, requester, operator, tenant, component
):
    change = _approved(requester, tenant, component)
    slot_create(change=change, window=windows[0], by=operator, now=NOW)
    slot_remove(change=ChangeRequest.objects.get(pk=change.pk), by=operator, reason="vendor delay")
    assert ChangeRequest.objects.get(pk=change.pk).state == State.APPROVED
    assert AuditEvent.objects.filter(action="change.unscheduled").exists()
    assert requester.notifications.filter(subject__contains="unscheduled").exists()


def test_changing_procedures_after_approval_sends_the_change_back_to_review(
    windows, requester, operator, security, tenant, component
):
    from changes.services import approval_decide, change_submit

    change = ChangeRequestFactory(
        requester=requester,
        tenants=[tenant],
        components=[component],
        proposed_start=NOW + timedelta(days=9),
        priority="LOW",
    )
    change = change_submit(change=change, by=requester, now=NOW)
    approval_decide(approval=change.approvals.get(), by=security, decision="APPROVED", now=NOW)
    change = ChangeRequest.objects.get(pk=change.pk)
    assert change.state == State.APPROVED
    change_procedure_add(
        change=change,
        by=requester,
        kind="manual_checklist",
        params={"steps": "Check dashboards", "estimated_minutes": "5"},
    )
    change = ChangeRequest.objects.get(pk=change.pk)
    assert change.state == State.IN_REVIEW
    assert change.approvals.get().status == "PENDING"
    assert AuditEvent.objects.filter(action="change.review_reopened").exists()


def test_the_schedule_page_shows_the_suggestion(
    client, windows, requester, operator, tenant, component
):
    change = _approved(requester, tenant, component)
    client.force_login(operator)
    page = client.get(reverse("maintenance:schedule", args=[change.pk]))
    assert page.status_code == 200
    assert "Next valid slot" in page.content.decode()
    response = client.post(
        reverse("maintenance:schedule", args=[change.pk]), {"window": windows[0].pk}
    )
    assert response.status_code == 302
    assert ChangeRequest.objects.get(pk=change.pk).state == State.SCHEDULED
