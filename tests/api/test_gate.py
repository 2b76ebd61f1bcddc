"""The deployment gate: 200 with the change while an approved change covering the
component and tenant is in progress in its open window; 423 with the reason otherwise
(no change, not approved, window not open, blackout), and closed again once the change
leaves its window. ``manage.py gate`` answers the same with its exit code."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from changes.models import ChangeRequest, State
from changes.services import change_implement, change_submit
from maintenance.models import BlackoutPeriod, MaintenanceWindow, WindowType
from maintenance.services import execution_advance, slot_create, window_start
from portal.models import AuditEvent
from tests.factories import ChangeRequestFactory
from tests.maintenance.execution_helpers import calm_calendar

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(make_user):
    """The deploy pipeline's account: it files changes and sees the tenant."""
    return make_user("pipeline", ["REQUESTER"])


@pytest.fixture
def gate(api_as, pipeline, component, tenant):
    api = api_as(pipeline, scopes=["read"])

    def ask(component_name=None, tenant_slug=None):
        return api.get(
            "/api/gate/",
            {"component": component_name or component.name, "tenant": tenant_slug or tenant.slug},
        )

    return ask


@pytest.fixture
def window(db):
    calm_calendar()
    start = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    return MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE, start=start, duration_minutes=120, notification_offsets=[60]
    )


@pytest.fixture
def approved(requester, tenant, component):
    return ChangeRequestFactory(
        requester=requester,
        tenants=[tenant],
        components=[component],
        state=State.APPROVED,
        category="STANDARD",
        risk_level="LOW",
        risk_score=10,
        window_minutes=30,
    )


@pytest.fixture
def scheduled(approved, window, operator):
    slot_create(change=approved, window=window, by=operator)
    return ChangeRequest.objects.get(pk=approved.pk)


def _run_window(window, operator) -> None:
    execution = window_start(window=window, by=operator)
    execution_advance(execution_id=execution.pk)


def _closed(response, reason: str) -> dict:
    assert response.status_code == 423, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["open"], body["reason"]) == (423, False, reason)
    return body


def test_it_is_closed_when_no_change_covers_the_component(gate):
    body = _closed(gate(), "no_change")
    assert body["change"] is None
    assert "No change covers edge-proxy for acme" in body["detail"]


def test_it_is_closed_while_the_change_is_not_approved(gate, requester, tenant, component):
    change = ChangeRequestFactory(
        requester=requester, tenants=[tenant], components=[component], type="SECURITY"
    )
    change_submit(change=change, by=requester)

    body = _closed(gate(), "not_approved")

    assert body["change"] == change.public_id
    assert "in review; it is not approved" in body["detail"]


def test_it_is_closed_for_an_approved_change_not_yet_scheduled(gate, approved):
    body = _closed(gate(), "window_closed")
    assert "approved but not scheduled" in body["detail"]


def test_it_is_closed_before_the_window_opens(gate, scheduled, window):
    body = _closed(gate(), "window_closed")
    assert body["change_id"] == scheduled.pk and body["window_id"] == window.pk
    assert f"opening at {window.start:%Y-%m-%d %H:%M} UTC" in body["detail"]


def test_it_opens_while_the_change_is_in_progress_in_its_open_window(
    gate, scheduled, window, make_user
):
    starter = make_user("night-operator", ["OPERATIONS"])
    with time_machine.travel(window.start + timedelta(minutes=5), tick=False):
        _run_window(window, starter)
        response = gate()

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["open"] is True and body["reason"] == "open"
    assert body["change"] == scheduled.public_id and body["change_id"] == scheduled.pk
    assert body["window_closes_at"] == window.end.isoformat()
    assert ChangeRequest.objects.get(pk=scheduled.pk).state == State.IN_PROGRESS


def test_a_change_that_leaves_its_window_closes_the_gate(gate, scheduled, window, make_user):
    starter = make_user("night-operator", ["OPERATIONS"])
    with time_machine.travel(window.start + timedelta(minutes=5), tick=False):
        _run_window(window, starter)
        assert gate().status_code == 200
        change_implement(change=scheduled, by=starter, notes="Deployed by the pipeline.")
        body = _closed(gate(), "window_closed")
    assert "has left its window" in body["detail"]


def test_the_gate_closes_when_the_window_ends(gate, scheduled, window, make_user):
    starter = make_user("night-operator", ["OPERATIONS"])
    with time_machine.travel(window.start + timedelta(minutes=5), tick=False):
        _run_window(window, starter)
    with time_machine.travel(window.end + timedelta(minutes=1), tick=False):
        body = _closed(gate(), "window_closed")
    assert "its window is not open" in body["detail"]


def test_it_is_closed_on_a_blacked_out_day(gate, scheduled, window, make_user):
    starter = make_user("night-operator", ["OPERATIONS"])
    with time_machine.travel(window.start + timedelta(minutes=5), tick=False):
        _run_window(window, starter)
        day = timezone.now().date()
        BlackoutPeriod.objects.create(start_date=day, end_date=day, reason="Open enrolment")
        body = _closed(gate(), "blackout")
    assert "Freeze: Open enrolment" in body["detail"]


def test_it_only_counts_changes_the_asker_may_see(api_as, make_user, other_tenant, gate):
    stranger = make_user("stranger", ["REQUESTER"], tenants=[other_tenant])
    api = api_as(stranger, scopes=["read"])

    response = api.get("/api/gate/", {"component": "edge-proxy", "tenant": "acme"})

    assert response.status_code == 404
    assert response.json()["detail"] == "No such tenant."
    assert AuditEvent.objects.filter(action="tenant.hidden", outcome="DENIED").count() == 1


def test_it_answers_a_clear_400_and_404_for_bad_questions(api_as, pipeline):
    api = api_as(pipeline, scopes=["read"])

    missing = api.get("/api/gate/", {"component": "edge-proxy"})
    unknown = api.get("/api/gate/", {"component": "no-such-thing", "tenant": "acme"})

    assert missing.status_code == 400 and "tenant" in missing.json()["errors"]
    assert unknown.status_code == 404 and unknown.json()["detail"] == "No such component."


def test_the_command_answers_with_its_exit_code(scheduled, window, make_user, component, tenant):
    out = io.StringIO()
    with pytest.raises(SystemExit) as closed:
        call_command("gate", component=component.name, tenant=tenant.slug, stdout=out)
    assert closed.value.code == 3
    assert '"reason": "window_closed"' in out.getvalue()

    starter = make_user("night-operator", ["OPERATIONS"])
    with time_machine.travel(window.start + timedelta(minutes=5), tick=False):
        _run_window(window, starter)
        out = io.StringIO()
        call_command("gate", component=component.name, tenant=tenant.slug, stdout=out)
    assert '"open": true' in out.getvalue()
    assert scheduled.public_id in out.getvalue()

    with pytest.raises(SystemExit) as unknown:
        call_command("gate", component="no-such-thing", tenant=tenant.slug, stderr=io.StringIO())
    assert unknown.value.code == 2
