"""The Emergency Committee approves an urgent change once (issue 8, item 18): the CTO's
and the Head of Security's decisions on the change also approve the emergency window
asked for it, audited as both; a window asked for after the committee approved is
approved at once; the 60-minute notice still holds.

Before the fix the same two people had to approve the window again after the change.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from changes.models import ChangeRequest, State
from changes.services import approval_decide
from maintenance.models import MaintenanceWindow, WindowApproval
from maintenance.services import emergency_window_request
from portal.errors import Invalid
from portal.models import AuditEvent
from tests.factories import ApprovalFactory, urgent_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def urgent(requester, tenant) -> ChangeRequest:
    """An urgent change in the Emergency Committee's review."""
    change = urgent_change(state=State.IN_REVIEW, requester=requester, tenants=[tenant])
    for role in ("CTO", "HEAD_OF_SECURITY"):
        ApprovalFactory(change=change, role=role, phase="PRE")
    return change


def _ask(by, change, *, ahead=timedelta(minutes=90)) -> MaintenanceWindow:
    return emergency_window_request(
        by=by,
        start=timezone.now() + ahead,
        duration_minutes=60,
        reason=f"Window for {change.public_id}",
        for_change=change,
    )


def _committee(change, cto, ciso) -> None:
    for role, user in (("CTO", cto), ("HEAD_OF_SECURITY", ciso)):
        approval_decide(
            approval=change.approvals.get(role=role),
            by=user,
            decision="APPROVED",
            comment="Committee: go.",
        )


def _window(window) -> MaintenanceWindow:
    return MaintenanceWindow.objects.get(pk=window.pk)


def test_the_committees_decisions_on_the_change_approve_its_window(urgent, operator, cto, ciso):
    window = _ask(operator, urgent)
    assert window.status == MaintenanceWindow.Status.PENDING_APPROVAL

    approval_decide(
        approval=urgent.approvals.get(role="CTO"), by=cto, decision="APPROVED", comment="go"
    )
    assert _window(window).status == MaintenanceWindow.Status.PENDING_APPROVAL
    cto_window = WindowApproval.objects.get(window=window, role="CTO")
    assert (cto_window.status, cto_window.decided_by) == (WindowApproval.Status.APPROVED, cto)

    approval_decide(
        approval=urgent.approvals.get(role="HEAD_OF_SECURITY"),
        by=ciso,
        decision="APPROVED",
        comment="go",
    )

    assert ChangeRequest.objects.get(pk=urgent.pk).state == State.APPROVED
    assert _window(window).status == MaintenanceWindow.Status.PLANNED
    assert set(window.approvals.values_list("role", "status", "decided_by__username")) == {
        ("CTO", "APPROVED", "cto"),
        ("HEAD_OF_SECURITY", "APPROVED", "ciso"),
    }
    # Audited as both: the change's approval and the window's.
    for user in ("cto", "ciso"):
        assert AuditEvent.objects.filter(action="approval.approved", username=user).count() == 1
        mirrored = AuditEvent.objects.get(action="window.approved", username=user)
        assert mirrored.details["change"] == urgent.public_id
        assert mirrored.object_id == str(window.pk)
    assert AuditEvent.objects.filter(action="window.planned", object_id=str(window.pk)).exists()


def test_a_window_asked_for_after_the_committee_approved_is_approved_at_once(
    urgent, operator, cto, ciso
):
    _committee(urgent, cto, ciso)

    window = _ask(operator, urgent)

    assert window.status == MaintenanceWindow.Status.PLANNED
    assert set(window.approvals.values_list("status", flat=True)) == {"APPROVED"}
    # Nobody is asked to approve what is already approved.
    from portal.models import Notification

    assert not Notification.objects.filter(dedup_key=f"window:{window.pk}:approval").exists()


def test_the_sixty_minute_notice_still_holds(urgent, operator, cto, ciso):
    _committee(urgent, cto, ciso)

    with pytest.raises(Invalid, match="60 minutes"):
        _ask(operator, urgent, ahead=timedelta(minutes=30))

    assert not MaintenanceWindow.objects.filter(for_change=urgent).exists()


def test_a_committee_member_who_asked_for_the_window_does_not_approve_it_by_the_change(
    urgent, make_user, ciso
):
    cto_on_call = make_user("cto-on-call", ["CTO", "OPERATIONS"])
    window = _ask(cto_on_call, urgent)

    approval_decide(approval=urgent.approvals.get(role="CTO"), by=cto_on_call, decision="APPROVED")

    # Separation of duties holds for the window as for a direct decision.
    assert WindowApproval.objects.get(window=window, role="CTO").status == "PENDING"
    assert _window(window).status == MaintenanceWindow.Status.PENDING_APPROVAL


def test_a_rejection_by_the_committee_approves_nothing(urgent, operator, cto):
    window = _ask(operator, urgent)

    approval_decide(
        approval=urgent.approvals.get(role="CTO"),
        by=cto,
        decision="REJECTED",
        comment="Too risky tonight.",
    )

    assert ChangeRequest.objects.get(pk=urgent.pk).state == State.REJECTED
    assert set(window.approvals.values_list("status", flat=True)) == {"PENDING"}


def test_a_window_for_a_standard_change_still_needs_its_own_approvals(
    requester, tenant, operator, security
):
    from changes.services import change_submit
    from tests.factories import ChangeRequestFactory

    change = change_submit(
        change=ChangeRequestFactory(
            type="SECURITY", priority="LOW", requester=requester, tenants=[tenant]
        ),
        by=requester,
    )
    window = _ask(operator, change)

    approval_decide(
        approval=change.approvals.get(role="SECURITY"), by=security, decision="APPROVED"
    )

    assert _window(window).status == MaintenanceWindow.Status.PENDING_APPROVAL
