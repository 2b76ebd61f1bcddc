"""Document results: a change closes only after its review (and an urgent one after
its retroactive approvals)."""

from __future__ import annotations

import pytest

from changes.models import Approval, ChangeRequest, State
from changes.services import approval_decide, change_close, review_submit
from portal.errors import Conflict, Invalid, NotAllowed
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db


def _executed(requester, tenant, **kwargs):
    return ChangeRequestFactory(
        requester=requester, tenants=[tenant], state=State.COMPLETED, **kwargs
    )


def test_a_change_closes_only_after_its_review(requester, tenant):
    change = _executed(requester, tenant)
    with pytest.raises(Conflict, match="post-implementation review"):
        change_close(change=change, by=requester)
    review_submit(
        change=change,
        by=requester,
        outcome="SUCCESSFUL",
        notes="Went to plan.",
        follow_ups="Automate step 2",
    )
    closed = change_close(change=ChangeRequest.objects.get(pk=change.pk), by=requester)
    assert closed.state == State.CLOSED and closed.closed_at is not None


def test_an_urgent_change_also_needs_its_retroactive_review(requester, tenant, compliance):
    change = _executed(requester, tenant, category="URGENT")
    retro = Approval.objects.create(change=change, role="COMPLIANCE", phase="RETROACTIVE")
    from guardian.shortcuts import assign_perm

    assign_perm("changes.decide_approval", compliance, retro)
    review_submit(change=change, by=requester, outcome="PARTIAL", notes="Needed a second try.")
    with pytest.raises(Conflict, match="retroactive approvals"):
        change_close(change=ChangeRequest.objects.get(pk=change.pk), by=requester)
    approval_decide(approval=retro, by=compliance, decision="APPROVED", comment="ok after all")
    change_close(change=ChangeRequest.objects.get(pk=change.pk), by=requester)
    assert ChangeRequest.objects.get(pk=change.pk).state == State.CLOSED


def test_a_review_needs_notes_and_a_run_change(requester, tenant, security):
    with pytest.raises(Invalid):
        review_submit(
            change=_executed(requester, tenant), by=requester, outcome="SUCCESSFUL", notes=" "
        )
    draft = ChangeRequestFactory(requester=requester, tenants=[tenant])
    with pytest.raises(Conflict):
        review_submit(change=draft, by=requester, outcome="SUCCESSFUL", notes="x")
    with pytest.raises(NotAllowed):
        review_submit(
            change=_executed(requester, tenant), by=security, outcome="SUCCESSFUL", notes="x"
        )
