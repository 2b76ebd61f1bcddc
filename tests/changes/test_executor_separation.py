"""Whoever started, implemented or verified a change may not decide any of its
approvals, its retroactive reviews included (issue 8, item 5).

Before the fix the operator who marked an urgent change implemented and verified it
approved its OPERATIONS retroactive review: separation of duties only knew the
requester and the one-role-per-person rule.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from changes.models import Approval, State
from changes.services import (
    approval_decide,
    change_implement,
    change_start,
    change_verify,
)
from portal.errors import SeparationOfDuties
from portal.models import AuditEvent
from tests.factories import urgent_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def carried_out(requester, tenant, make_user):
    """An urgent change started by one operator, implemented by a second and verified by
    a third, through the lifecycle services; its retroactive reviews are now open."""
    starter = make_user("starter", ["OPERATIONS"])
    implementer = make_user("implementer", ["OPERATIONS"])
    verifier = make_user("verifier", ["OPERATIONS"])
    change = urgent_change(state=State.SCHEDULED, requester=requester, tenants=[tenant])
    change_start(change=change, by=starter, details={"by_hand": True})
    change_implement(change=change, by=implementer, notes="Hotfix deployed.")
    change_verify(change=change, by=verifier, passed=True, notes="Served version checked.")
    change.refresh_from_db()
    assert change.state == State.COMPLETED
    assert (change.started_by, change.implemented_by, change.verified_by) == (
        starter,
        implementer,
        verifier,
    )
    return change


@pytest.mark.parametrize("who", ["starter", "implementer", "verifier"])
def test_whoever_carried_the_change_out_may_not_ratify_it(carried_out, who, django_user_model):
    user = django_user_model.objects.get(username=who)
    review = carried_out.approvals.get(role="OPERATIONS", phase="RETROACTIVE")

    with pytest.raises(SeparationOfDuties, match="carried out this change"):
        approval_decide(approval=review, by=user, decision="APPROVED", comment="Went fine.")

    review.refresh_from_db()
    assert review.status == Approval.Status.PENDING and review.decided_by is None
    denied = AuditEvent.objects.get(action="approval.refused", outcome="DENIED")
    assert denied.username == who and denied.details["approval_role"] == "OPERATIONS"


@pytest.mark.parametrize("who", ["starter", "implementer", "verifier"])
def test_the_approval_page_tells_them_why_and_the_post_is_refused(
    client, carried_out, who, django_user_model
):
    user = django_user_model.objects.get(username=who)
    review = carried_out.approvals.get(role="OPERATIONS", phase="RETROACTIVE")
    client.force_login(user)

    page = client.get(reverse("changes:approval", args=[review.pk])).content.decode()
    response = client.post(
        reverse("changes:approval", args=[review.pk]),
        {"decision": "APPROVED", "comment": "ok", "version": review.version},
    )

    assert "You carried out this change" in page
    assert 'value="APPROVED"' not in page  # no Approve button
    assert response.status_code == 403
    review.refresh_from_db()
    assert review.status == Approval.Status.PENDING


def test_an_operator_who_took_no_part_ratifies_it(carried_out, operator):
    review = carried_out.approvals.get(role="OPERATIONS", phase="RETROACTIVE")

    decided = approval_decide(approval=review, by=operator, decision="APPROVED", comment="ok")

    assert (decided.status, decided.decided_by) == (Approval.Status.APPROVED, operator)


def test_a_delegation_does_not_let_them_decide_either(carried_out, make_user):
    """Holding the role through a delegation is no way around the rule."""
    from changes.services import approval_delegate

    security = make_user("sec-holder", ["SECURITY"])
    review = carried_out.approvals.get(role="SECURITY", phase="RETROACTIVE")
    implementer = type(security).objects.get(username="implementer")

    with pytest.raises(SeparationOfDuties):
        approval_delegate(approval=review, by=security, to_user=implementer)
