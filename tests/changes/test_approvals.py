"""Deciding approvals: separation of duties, outcomes, delegation, escalation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from changes.models import Approval, ChangeRequest, State
from changes.services import (
    approval_decide,
    approval_delegate,
    approvals_escalate_overdue,
    change_cancel,
    change_copy,
    change_submit,
)
from portal.errors import Conflict, Invalid, NotAllowed, SeparationOfDuties
from portal.models import AuditEvent, Notification

pytestmark = pytest.mark.django_db
APPROVER_ROLES = ["SECURITY", "ENGINEERING", "OPERATIONS", "COMPLIANCE", "CTO", "HEAD_OF_SECURITY"]


def _submit(change):
    return change_submit(change=change, by=change.requester)


def _denials(change):
    return AuditEvent.objects.filter(
        object_id=change.public_id, outcome="DENIED", action="approval.refused"
    )


@pytest.mark.parametrize("role", APPROVER_ROLES)
def test_it_rejects_self_approval_under_every_role(
    make_user, make_change, role, tenant, other_tenant
):
    selfish = make_user(
        f"selfish-{role.lower()}", ["REQUESTER", role], tenants=[tenant, other_tenant]
    )
    # A change that needs this role: its type for standard roles, two tenants for
    # COMPLIANCE, CRITICAL priority (urgent: the emergency committee) for CTO/HoS.
    change_type = {"ENGINEERING": "FEATURE", "OPERATIONS": "CONFIGURATION"}.get(role, "SECURITY")
    urgent = role in ("CTO", "HEAD_OF_SECURITY")
    change = make_change(
        requester=selfish,
        type=change_type,
        tenants=[tenant, other_tenant],
        priority="CRITICAL" if urgent else "LOW",
    )
    change = _submit(change)
    approval = change.approvals.get(role=role, phase="PRE")
    with pytest.raises(SeparationOfDuties, match="You requested this change"):
        approval_decide(approval=approval, by=selfish, decision="APPROVED")
    assert Approval.objects.get(pk=approval.pk).status == "PENDING"
    denial = _denials(change).get()
    assert denial.username == selfish.username and denial.role == role


def test_it_refuses_a_superuser_deciding_their_own_change(make_change, superuser):
    change = _submit(make_change(requester=superuser))
    approval = change.approvals.get()
    with pytest.raises(SeparationOfDuties):
        approval_decide(approval=approval, by=superuser, decision="APPROVED")
    assert _denials(change).count() == 1


def test_one_person_fills_only_one_role_per_change(make_user, make_change, tenant, other_tenant):
    both = make_user("both", ["SECURITY", "COMPLIANCE"], tenants=[tenant, other_tenant])
    change = _submit(make_change(type="SECURITY", tenants=[tenant, other_tenant]))
    approval_decide(approval=change.approvals.get(role="SECURITY"), by=both, decision="APPROVED")
    with pytest.raises(SeparationOfDuties, match="only one role per change"):
        approval_decide(
            approval=change.approvals.get(role="COMPLIANCE"), by=both, decision="APPROVED"
        )
    assert _denials(change).count() == 1
    assert ChangeRequest.objects.get(pk=change.pk).state == State.IN_REVIEW


def test_a_rejection_needs_a_comment(submitted_change, security):
    with pytest.raises(Invalid, match="needs a comment"):
        approval_decide(
            approval=submitted_change.approvals.get(),
            by=security,
            decision="REJECTED",
            comment="   ",
        )


def test_it_refuses_someone_without_the_role(submitted_change, operator):
    with pytest.raises(NotAllowed):
        approval_decide(approval=submitted_change.approvals.get(), by=operator, decision="APPROVED")
    assert _denials(submitted_change).get().outcome == "DENIED"


def test_decisions_only_while_in_review(make_change, security):
    change = _submit(make_change())
    change_cancel(change=change, by=change.requester)
    with pytest.raises(Conflict, match="cannot be decided now"):
        approval_decide(approval=change.approvals.get(), by=security, decision="APPROVED")


def test_any_rejection_rejects_and_all_approvals_approve(
    make_change, security, compliance, tenant, other_tenant
):
    first = _submit(make_change(type="SECURITY", tenants=[tenant, other_tenant]))
    approval_decide(approval=first.approvals.get(role="SECURITY"), by=security, decision="APPROVED")
    approval_decide(
        approval=first.approvals.get(role="COMPLIANCE"),
        by=compliance,
        decision="REJECTED",
        comment="PHI export not covered",
    )
    first.refresh_from_db()
    assert first.state == State.REJECTED

    second = _submit(make_change(type="SECURITY", tenants=[tenant, other_tenant]))
    approval_decide(
        approval=second.approvals.get(role="SECURITY"), by=security, decision="APPROVED"
    )
    assert ChangeRequest.objects.get(pk=second.pk).state == State.IN_REVIEW
    approval_decide(
        approval=second.approvals.get(role="COMPLIANCE"), by=compliance, decision="APPROVED"
    )
    assert ChangeRequest.objects.get(pk=second.pk).state == State.APPROVED
    actions = list(
        AuditEvent.objects.filter(object_id=second.public_id).values_list("action", flat=True)
    )
    # (the factory made the draft, so there is no change.created row)
    assert actions == [
        "change.submitted",
        "change.review_started",
        "approval.approved",
        "approval.approved",
        "change.approved",
    ]


def test_approvers_and_requester_are_notified(make_change, security, requester):
    change = _submit(make_change())
    assert Notification.objects.filter(recipient=security, subject__contains="Approval needed")
    approval_decide(approval=change.approvals.get(), by=security, decision="APPROVED")
    subjects = set(
        Notification.objects.filter(recipient=requester).values_list("subject", flat=True)
    )
    assert f"{change.public_id}: Security approved" in subjects
    assert f"{change.public_id} was approved" in subjects


def test_an_approver_may_delegate_to_a_named_user(submitted_change, security, make_user):
    deputy = make_user("deputy", ["ENGINEERING"])
    approval = submitted_change.approvals.get()
    approval_delegate(approval=approval, by=security, to_user=deputy)
    decided = approval_decide(approval=approval, by=deputy, decision="APPROVED")
    assert decided.decided_by == deputy
    event = AuditEvent.objects.get(action="approval.approved")
    assert event.acting_for_id == security.pk
    assert AuditEvent.objects.filter(action="approval.delegated").exists()


def test_delegating_to_the_requester_is_refused(submitted_change, security):
    with pytest.raises(SeparationOfDuties):
        approval_delegate(
            approval=submitted_change.approvals.get(),
            by=security,
            to_user=submitted_change.requester,
        )


def test_overdue_approvals_escalate_once(make_change, security, ciso):
    change = _submit(make_change(type="SECURITY", priority="HIGH"))
    later = timezone.now() + timedelta(days=5)
    assert approvals_escalate_overdue(now=later) >= 1
    assert approvals_escalate_overdue(now=later) == 0
    overdue = Notification.objects.filter(subject__startswith="OVERDUE")
    assert set(overdue.values_list("recipient__username", flat=True)) >= {"security", "ciso"}
    assert overdue.filter(recipient=security).count() == 1
    assert change.requester.notifications.filter(subject__startswith="OVERDUE").count() == 0


def test_cancel_is_for_the_requester_before_execution(make_change, security):
    change = make_change()
    with pytest.raises(NotAllowed):
        change_cancel(change=change, by=security)
    started = make_change(state=State.IN_PROGRESS)
    with pytest.raises(Conflict):
        change_cancel(change=started, by=started.requester)


def test_a_rejected_change_can_be_copied_to_a_new_draft(make_change, security):
    change = _submit(make_change())
    approval_decide(
        approval=change.approvals.get(), by=security, decision="REJECTED", comment="not now"
    )
    copy = change_copy(change=ChangeRequest.objects.get(pk=change.pk), by=change.requester)
    assert copy.state == State.DRAFT and copy.copied_from_id == change.pk
    assert list(copy.tenants.all()) == list(change.tenants.all())


def test_a_stale_decision_form_gets_a_conflict_message(
    client, submitted_change, security, make_user
):
    approval = submitted_change.approvals.get()
    old_version = approval.version
    approval_delegate(approval=approval, by=security, to_user=make_user("deputy2", ["SECURITY"]))
    client.force_login(security)
    response = client.post(
        reverse("changes:approval", args=[approval.pk]),
        {"decision": "APPROVED", "version": old_version},
    )
    assert response.status_code == 409
    assert "changed since you opened it" in response.content.decode()
    assert Approval.objects.get(pk=approval.pk).status == "PENDING"


def test_a_stale_edit_form_is_refused(client, draft):
    client.force_login(draft.requester)
    url = reverse("changes:edit", args=[draft.pk])
    form = client.get(url).context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        components=[c.pk for c in draft.components.all()],
        tenants=[t.pk for t in draft.tenants.all()],
        services=[],
        proposed_start=(timezone.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        version=draft.version,
        action="save",
    )
    data.pop("blackout_exception", None)
    ChangeRequest.objects.filter(pk=draft.pk).update(version=draft.version + 1)
    response = client.post(url, data)
    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode()


def test_a_requester_rejecting_without_a_comment_is_refused_by_duty_first(
    make_user, make_change, tenant
):
    selfish = make_user("selfish-sec", ["REQUESTER", "SECURITY"])
    change = _submit(make_change(requester=selfish))
    with pytest.raises(SeparationOfDuties):
        approval_decide(approval=change.approvals.get(), by=selfish, decision="REJECTED")
    assert _denials(change).count() == 1


def test_searching_for_odd_digits_does_not_fail(client, requester):
    client.force_login(requester)
    for term in ("²", "CHG-٣", "CHG-000001", "9" * 40):
        assert client.get(reverse("changes:list"), {"q": term}).status_code == 200
