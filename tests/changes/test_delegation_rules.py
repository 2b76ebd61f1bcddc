"""Delegating an approval (issue 8, item 3): a delegate must see every tenant of the
change and must not be excluded by separation of duties; a delegation can be revoked,
expires after 7 days, and the approval page lists it.

Before the fix ``approval_delegate`` accepted any active user: a user with no role and
no tenant became the delegate, could then open the change (404 → 200) and approve it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from changes.models import Approval, ChangeRequest, State
from changes.services import (
    approval_decide,
    approval_delegate,
    change_submit,
    delegations_expire,
)
from portal.errors import NotAllowed, SeparationOfDuties
from portal.models import AuditEvent
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def security_approval(submitted_change) -> Approval:
    return submitted_change.approvals.get(role="SECURITY")


def _denied(action: str) -> AuditEvent | None:
    return AuditEvent.objects.filter(action=action, outcome="DENIED").order_by("-sequence").first()


def _fresh(approval: Approval) -> Approval:
    return Approval.objects.select_related("change").get(pk=approval.pk)


# --- who may not be a delegate -------------------------------------------------------------


def test_it_refuses_a_delegate_with_no_role_and_no_tenant(
    client, security, security_approval, make_user
):
    nobody = make_user("nobody", [], tenants=[])
    client.force_login(security)

    response = client.post(
        reverse("changes:delegate", args=[security_approval.pk]),
        {"username": "nobody", "days": 7},
    )

    assert response.status_code == 403
    assert "may not see every tenant" in response.content.decode()
    assert _fresh(security_approval).delegated_to is None
    denied = _denied("approval.delegate_refused")
    assert denied is not None and denied.username == "security"
    assert denied.details["to"] == "nobody"
    # The old defect: the would-be delegate could then read the change and approve it.
    client.force_login(nobody)
    change = security_approval.change
    assert client.get(reverse("changes:detail", args=[change.pk])).status_code == 404
    assert client.get(reverse("changes:approval", args=[security_approval.pk])).status_code == 404
    assert (
        client.post(
            reverse("changes:approval", args=[security_approval.pk]),
            {"decision": "APPROVED", "version": security_approval.version},
        ).status_code
        == 404
    )
    assert _fresh(security_approval).status == Approval.Status.PENDING


def test_it_refuses_a_delegate_who_sees_only_some_of_the_changes_tenants(
    make_change, security, make_user, tenant, other_tenant
):
    asker = make_user("multi-requester", ["REQUESTER"], tenants=[tenant, other_tenant])
    change = change_submit(
        change=make_change(
            type="SECURITY", priority="LOW", tenants=[tenant, other_tenant], requester=asker
        ),
        by=asker,
    )
    half = make_user("half", ["SECURITY"], tenants=[tenant])

    with pytest.raises(SeparationOfDuties, match="may not see every tenant"):
        approval_delegate(approval=change.approvals.get(role="SECURITY"), by=security, to_user=half)


def test_it_refuses_the_changes_requester_as_delegate(security, security_approval):
    with pytest.raises(SeparationOfDuties, match="requester"):
        approval_delegate(
            approval=security_approval, by=security, to_user=security_approval.change.requester
        )

    assert _fresh(security_approval).delegated_to is None
    assert _denied("approval.delegate_refused") is not None


def test_it_refuses_someone_who_decided_another_role_on_the_change(
    make_change, requester, security, compliance, tenant, other_tenant
):
    # Two tenants: Compliance approves as well as Security.
    change = change_submit(
        change=make_change(type="SECURITY", priority="LOW", tenants=[tenant, other_tenant]),
        by=requester,
    )
    approval_decide(
        approval=change.approvals.get(role="COMPLIANCE"),
        by=compliance,
        decision="APPROVED",
        comment="Both tenants informed.",
    )

    with pytest.raises(SeparationOfDuties, match="already decided this change as Compliance"):
        approval_delegate(
            approval=change.approvals.get(role="SECURITY"), by=security, to_user=compliance
        )

    assert change.approvals.get(role="SECURITY").delegated_to is None


def test_it_refuses_whoever_carried_the_change_out(requester, tenant, security, make_user):
    # An urgent change that ran: its retroactive reviews are open, and the operator who
    # started and verified it may not ratify it, not even as someone's delegate.
    doer = make_user("doer", ["OPERATIONS"])
    change = ChangeRequestFactory(
        requester=requester,
        tenants=[tenant],
        state=State.COMPLETED,
        category="URGENT",
        started_by=doer,
        verified_by=doer,
    )
    retro = Approval.objects.create(change=change, role="SECURITY", phase="RETROACTIVE")
    from guardian.shortcuts import assign_perm

    assign_perm(Approval.permission, security, retro)

    with pytest.raises(SeparationOfDuties, match="carries the change out"):
        approval_delegate(approval=retro, by=security, to_user=doer)

    assert _fresh(retro).delegated_to is None


def test_only_a_holder_of_the_role_may_delegate(client, operator, security_approval, engineer):
    client.force_login(operator)

    response = client.post(
        reverse("changes:delegate", args=[security_approval.pk]),
        {"username": engineer.username, "days": 7},
    )

    assert response.status_code == 403
    assert _fresh(security_approval).delegated_to is None


# --- a valid delegate, revoking, expiry ---------------------------------------------------------


def test_a_valid_delegate_decides_and_the_decision_names_who_they_acted_for(
    client, security, security_approval, engineer
):
    client.force_login(security)
    response = client.post(
        reverse("changes:delegate", args=[security_approval.pk]),
        {"username": engineer.username, "days": 7},
    )
    assert response.status_code == 302

    client.force_login(engineer)
    page = client.get(reverse("changes:approval", args=[security_approval.pk]))
    assert page.status_code == 200
    delegations = page.content.decode().split('data-testid="delegations"', 1)[1]
    assert "engineer" in delegations and "security" in delegations

    response = client.post(
        reverse("changes:approval", args=[security_approval.pk]),
        {
            "decision": "APPROVED",
            "comment": "For Security.",
            "version": _fresh(security_approval).version,
        },
    )

    assert response.status_code == 302
    approval = _fresh(security_approval)
    assert (approval.status, approval.decided_by) == (Approval.Status.APPROVED, engineer)
    assert ChangeRequest.objects.get(pk=approval.change_id).state == State.APPROVED
    event = AuditEvent.objects.get(action="approval.approved")
    assert event.username == "engineer" and event.acting_for == security


def test_the_approval_page_lists_the_active_delegation_with_its_expiry(
    client, security, security_approval, engineer
):
    delegated = approval_delegate(approval=security_approval, by=security, to_user=engineer, days=3)
    client.force_login(security)

    body = client.get(reverse("changes:approval", args=[security_approval.pk])).content.decode()

    table = body.split('data-testid="delegations"', 1)[1].split("</table>", 1)[0]
    assert "engineer" in table and "security" in table
    assert f"{delegated.delegation_expires_at:%Y-%m-%d}" in table
    assert "Revoke" in table


def test_a_revoked_delegate_can_no_longer_decide(client, security, security_approval, engineer):
    approval_delegate(approval=security_approval, by=security, to_user=engineer)
    client.force_login(security)

    response = client.post(reverse("changes:revoke_delegation", args=[security_approval.pk]))

    assert response.status_code == 302
    assert _fresh(security_approval).delegated_to is None
    assert AuditEvent.objects.filter(action="approval.delegation_revoked").count() == 1
    client.force_login(engineer)
    assert client.get(reverse("changes:approval", args=[security_approval.pk])).status_code == 403
    response = client.post(
        reverse("changes:approval", args=[security_approval.pk]),
        {"decision": "APPROVED", "version": _fresh(security_approval).version},
    )
    assert response.status_code == 403
    with pytest.raises(NotAllowed):
        approval_decide(approval=_fresh(security_approval), by=engineer, decision="APPROVED")
    assert _fresh(security_approval).status == Approval.Status.PENDING


def test_someone_else_may_not_revoke_a_delegation(
    client, security, security_approval, engineer, operator
):
    approval_delegate(approval=security_approval, by=security, to_user=engineer)
    client.force_login(operator)

    response = client.post(reverse("changes:revoke_delegation", args=[security_approval.pk]))

    assert response.status_code == 403
    assert _fresh(security_approval).delegated_to == engineer


def test_a_delegation_expires_after_seven_days(client, security, security_approval, engineer):
    start = timezone.now()
    approval_delegate(approval=security_approval, by=security, to_user=engineer)
    expires = _fresh(security_approval).delegation_expires_at
    assert abs(expires - (start + timedelta(days=7))) < timedelta(minutes=1)
    client.force_login(engineer)
    assert client.get(reverse("changes:approval", args=[security_approval.pk])).status_code == 200

    with time_machine.travel(start + timedelta(days=7, minutes=5), tick=False):
        client.force_login(engineer)  # the old session expired with the week
        # Expired, even before beat has cleaned up: the delegate may not decide.
        assert (
            client.get(reverse("changes:approval", args=[security_approval.pk])).status_code == 403
        )
        with pytest.raises(NotAllowed):
            approval_decide(approval=_fresh(security_approval), by=engineer, decision="APPROVED")

        assert delegations_expire() == 1
        assert delegations_expire() == 0

    approval = _fresh(security_approval)
    assert approval.delegated_to is None and approval.status == Approval.Status.PENDING
    assert not engineer.has_perm(Approval.permission, approval)
    expired = AuditEvent.objects.get(action="approval.delegation_expired")
    assert expired.details["delegate"] == "engineer" and expired.user is None


def test_a_delegation_lasts_one_to_thirty_days(client, security, security_approval, engineer):
    client.force_login(security)

    for days in (0, 31):
        response = client.post(
            reverse("changes:delegate", args=[security_approval.pk]),
            {"username": engineer.username, "days": days},
        )
        assert response.status_code == 302  # back to the page with the form's message
        assert _fresh(security_approval).delegated_to is None
