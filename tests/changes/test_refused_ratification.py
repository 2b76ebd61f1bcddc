"""A refused retroactive ratification (issue 8, item 4) is not a pass: it blocks the
urgent change's closure, tells the Head of Security and Compliance, and needs a
corrective action they record before the change can close. Overdue retroactive
reviews escalate like the others.

Before the fix ``retroactive_done`` only looked for PENDING reviews, so a change whose
ratification was refused closed as if ratified; escalation only looked at phase PRE.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from changes.models import Approval, ChangeRequest, CorrectiveAction, State
from changes.services import (
    approval_decide,
    approvals_escalate_overdue,
    change_close,
    change_complete,
    corrective_action_record,
    review_submit,
)
from portal.errors import Conflict, Invalid, NotAllowed
from portal.models import AuditEvent, Notification
from tests.factories import ChangeRequestFactory, urgent_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def refused(requester, tenant, security):
    """An urgent change that ran, was reviewed, and whose Security ratification was
    refused; the other three reviews ratified it."""
    change = urgent_change(state=State.COMPLETED, requester=requester, tenants=[tenant])
    review_submit(change=change, by=requester, outcome="SUCCESSFUL", notes="Patched in time.")
    approval_decide(
        approval=change.approvals.get(role="SECURITY"),
        by=security,
        decision="REJECTED",
        comment="The hotfix bypassed the WAF review; not ratified.",
    )
    return ChangeRequest.objects.get(pk=change.pk)


def _ratify_others(change, engineer, operator, compliance) -> None:
    for role, user in (("ENGINEERING", engineer), ("OPERATIONS", operator)):
        approval_decide(approval=change.approvals.get(role=role), by=user, decision="APPROVED")
    approval_decide(
        approval=change.approvals.get(role="COMPLIANCE"), by=compliance, decision="APPROVED"
    )


def _fresh(change) -> ChangeRequest:
    return ChangeRequest.objects.get(pk=change.pk)


def test_a_refused_ratification_blocks_closure(
    refused, requester, engineer, operator, compliance, client
):
    _ratify_others(refused, engineer, operator, compliance)
    change = _fresh(refused)
    assert not change.retroactive_pending()

    assert not change.closable()
    with pytest.raises(Conflict, match="corrective action"):
        change_close(change=change, by=requester)
    assert _fresh(change).state == State.COMPLETED
    client.force_login(requester)
    page = client.get(reverse("changes:detail", args=[change.pk])).content.decode()
    assert "Close change" not in page
    assert "refused to ratify" in page
    response = client.post(reverse("changes:close", args=[change.pk]))
    assert response.status_code == 409
    assert _fresh(change).state == State.COMPLETED


def test_the_head_of_security_and_compliance_are_told_at_once(ciso, compliance, cto, refused):
    # (The people exist before the ratification is refused: fixtures run in this order.)
    told = Notification.objects.filter(subject__startswith="Ratification refused:")

    assert sorted(told.values_list("recipient__username", flat=True)) == ["ciso", "compliance"]
    assert refused.public_id in told.first().subject
    event = AuditEvent.objects.get(action="change.ratification_refused")
    assert event.details["role"] == "SECURITY"


@pytest.mark.parametrize("role", ["ciso", "compliance"])
def test_a_corrective_note_by_the_head_of_security_or_compliance_unblocks_closure(
    request, refused, requester, engineer, operator, compliance, role, client
):
    _ratify_others(refused, engineer, operator, compliance)
    recorder = request.getfixturevalue(role)
    client.force_login(recorder)

    response = client.post(
        reverse("changes:correct", args=[refused.pk]),
        {"note": "Incident INC-4411 opened; WAF rules reviewed after the fact."},
    )

    assert response.status_code == 302
    action = CorrectiveAction.objects.get(change=refused)
    assert (action.kind, action.recorded_by) == (CorrectiveAction.Kind.INCIDENT_NOTE, recorder)
    assert action.recorded_role == ("HEAD_OF_SECURITY" if role == "ciso" else "COMPLIANCE")
    audit = AuditEvent.objects.get(action="change.corrective_action")
    assert audit.username == recorder.username and "INC-4411" in audit.details["note"]
    closed = change_close(change=_fresh(refused), by=requester)
    assert closed.state == State.CLOSED


def test_a_linked_corrective_change_unblocks_closure(
    refused, requester, engineer, operator, compliance, ciso, tenant
):
    _ratify_others(refused, engineer, operator, compliance)
    fix = ChangeRequestFactory(requester=requester, tenants=[tenant], title="Add the WAF rule")

    action = corrective_action_record(
        change=_fresh(refused), by=ciso, note="Tracked as a normal change.", linked_change=fix
    )

    assert action.kind == CorrectiveAction.Kind.LINKED_CHANGE and action.linked_change == fix
    assert change_close(change=_fresh(refused), by=requester).state == State.CLOSED


@pytest.mark.parametrize("role", ["requester", "operator", "security", "cto"])
def test_no_one_else_may_record_the_corrective_action(request, refused, role, client):
    user = request.getfixturevalue(role)
    client.force_login(user)

    response = client.post(
        reverse("changes:correct", args=[refused.pk]), {"note": "It is fine, trust me."}
    )

    assert response.status_code == 403
    assert not CorrectiveAction.objects.exists()
    denied = AuditEvent.objects.get(action="change.correct_refused")
    assert denied.outcome == "DENIED" and denied.username == user.username
    with pytest.raises(NotAllowed):
        corrective_action_record(change=_fresh(refused), by=user, note="Still no.")


def test_a_corrective_action_needs_a_note_and_cannot_link_the_change_itself(refused, ciso):
    with pytest.raises(Invalid, match="Describe"):
        corrective_action_record(change=refused, by=ciso, note="  ")
    with pytest.raises(Invalid, match="cannot correct itself"):
        corrective_action_record(change=refused, by=ciso, note="x", linked_change=refused)
    assert not CorrectiveAction.objects.exists()


def test_a_corrective_action_is_only_for_a_refused_ratification(requester, tenant, ciso):
    ratified = urgent_change(state=State.COMPLETED, requester=requester, tenants=[tenant])

    with pytest.raises(Conflict, match="No retroactive ratification"):
        corrective_action_record(change=ratified, by=ciso, note="Nothing to correct.")


def test_the_compliance_dashboard_lists_refused_ratifications_until_corrected(
    refused, compliance, ciso, client
):
    client.force_login(compliance)
    panel = client.get(reverse("portal:dashboard")).content.decode()
    refused_part = panel.split('data-testid="panel-ratifications"', 1)[1].split(
        "Retroactive reviews due", 1
    )[0]
    assert refused.public_id in refused_part

    corrective_action_record(change=refused, by=ciso, note="INC-4411")

    panel = client.get(reverse("portal:dashboard")).content.decode()
    refused_part = panel.split('data-testid="panel-ratifications"', 1)[1].split(
        "Retroactive reviews due", 1
    )[0]
    assert refused.public_id not in refused_part


# --- overdue retroactive reviews escalate ----------------------------------------------------


def test_overdue_retroactive_reviews_escalate_once(requester, tenant, security, ciso, engineer):
    change = urgent_change(state=State.VERIFYING, requester=requester, tenants=[tenant])
    ran_at = timezone.now()
    change_complete(change=change, now=ran_at)
    due = Approval.objects.filter(change=change, phase="RETROACTIVE")
    assert {a.due_at for a in due} == {ran_at + timedelta(hours=72)}

    assert approvals_escalate_overdue(now=ran_at + timedelta(hours=71)) == 0
    with time_machine.travel(ran_at + timedelta(hours=73), tick=False):
        assert approvals_escalate_overdue() == 4
        assert approvals_escalate_overdue() == 0

    overdue = Notification.objects.filter(subject__startswith="OVERDUE retroactive review")
    subjects = set(overdue.values_list("subject", flat=True))
    assert f"OVERDUE retroactive review: {change.public_id} (Security)" in subjects
    assert set(overdue.values_list("recipient__username", flat=True)) >= {"security", "ciso"}
    assert "requester" not in set(overdue.values_list("recipient__username", flat=True))
    escalated = AuditEvent.objects.filter(action="approval.escalated")
    assert escalated.count() == 4
    assert {e.details["phase"] for e in escalated} == {"RETROACTIVE"}


def test_a_decided_retroactive_review_does_not_escalate(requester, tenant, security):
    change = urgent_change(state=State.VERIFYING, requester=requester, tenants=[tenant])
    ran_at = timezone.now()
    change_complete(change=change, now=ran_at)
    approval_decide(
        approval=change.approvals.get(role="SECURITY"), by=security, decision="APPROVED"
    )

    assert approvals_escalate_overdue(now=ran_at + timedelta(hours=73)) == 3
