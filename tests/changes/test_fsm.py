"""The change state machine: every legal transition works, every other is refused."""

from __future__ import annotations

import pytest
from django_fsm import TransitionNotAllowed

from changes.models import Approval, ChangeRequest, State

pytestmark = pytest.mark.django_db

# transition method -> states it may leave from -> state it leads to
LEGAL = {
    "submit": ({State.DRAFT}, State.SUBMITTED),
    "start_review": ({State.SUBMITTED}, State.IN_REVIEW),
    "approve": ({State.IN_REVIEW}, State.APPROVED),
    "reject": ({State.IN_REVIEW}, State.REJECTED),
    "reopen_review": ({State.APPROVED, State.SCHEDULED}, State.IN_REVIEW),
    "schedule": ({State.APPROVED}, State.SCHEDULED),
    "unschedule": ({State.SCHEDULED}, State.APPROVED),
    "start": ({State.SCHEDULED}, State.IN_PROGRESS),
    "implemented": ({State.IN_PROGRESS}, State.VERIFYING),
    "complete": ({State.VERIFYING}, State.COMPLETED),
    "fail": ({State.IN_PROGRESS, State.VERIFYING}, State.FAILED),
    "roll_back": ({State.FAILED}, State.ROLLED_BACK),
    "close": ({State.COMPLETED, State.FAILED, State.ROLLED_BACK}, State.CLOSED),
    "cancel": (
        {State.DRAFT, State.SUBMITTED, State.IN_REVIEW, State.APPROVED, State.SCHEDULED},
        State.CANCELLED,
    ),
}
PAIRS = [(name, state) for name in LEGAL for state in State.values]


def _meet_conditions(change: ChangeRequest, name: str) -> None:
    """Give conditional transitions what they need to be allowed."""
    if name == "approve":
        Approval.objects.create(change=change, role="SECURITY", status="APPROVED")
    elif name == "reject":
        Approval.objects.create(change=change, role="SECURITY", status="REJECTED")
    elif name == "close":
        from changes.models import PostImplementationReview

        PostImplementationReview.objects.create(
            change=change, outcome="SUCCESSFUL", notes="ok", reviewed_by=change.requester
        )


@pytest.mark.parametrize(("name", "state"), PAIRS, ids=[f"{n}-from-{s}" for n, s in PAIRS])
def test_each_transition_is_allowed_only_from_its_sources(make_change, name, state):
    change = make_change(state=state)
    sources, target = LEGAL[name]
    _meet_conditions(change, name)
    change = ChangeRequest.objects.get(pk=change.pk)
    if state in sources:
        getattr(change, name)()
        change.save()
        assert ChangeRequest.objects.get(pk=change.pk).state == target
    else:
        with pytest.raises(TransitionNotAllowed):
            getattr(change, name)()
        assert ChangeRequest.objects.get(pk=change.pk).state == state


def test_the_state_cannot_be_assigned_directly(draft):
    with pytest.raises(AttributeError):
        draft.state = State.APPROVED


def test_approve_waits_for_every_required_approval(make_change):
    change = make_change(state=State.IN_REVIEW)
    Approval.objects.create(change=change, role="SECURITY", status="APPROVED")
    Approval.objects.create(change=change, role="COMPLIANCE", status="PENDING")
    with pytest.raises(TransitionNotAllowed):
        change.approve()


def test_retroactive_reviews_do_not_hold_up_approval(make_change):
    change = make_change(state=State.IN_REVIEW)
    Approval.objects.create(change=change, role="CTO", status="APPROVED")
    Approval.objects.create(change=change, role="SECURITY", phase="RETROACTIVE")
    change.approve()
    assert change.state == State.APPROVED


def test_reject_needs_a_rejection(make_change):
    change = make_change(state=State.IN_REVIEW)
    Approval.objects.create(change=change, role="SECURITY", status="APPROVED")
    with pytest.raises(TransitionNotAllowed):
        change.reject()


def test_a_change_closes_only_after_its_review(make_change):
    change = make_change(state=State.COMPLETED)
    with pytest.raises(TransitionNotAllowed):
        change.close()


def test_an_urgent_change_also_needs_its_retroactive_approvals(make_change):
    from changes.models import PostImplementationReview

    change = make_change(state=State.COMPLETED, category="URGENT")
    PostImplementationReview.objects.create(
        change=change, outcome="SUCCESSFUL", notes="ok", reviewed_by=change.requester
    )
    retro = Approval.objects.create(change=change, role="COMPLIANCE", phase="RETROACTIVE")
    change = ChangeRequest.objects.get(pk=change.pk)
    with pytest.raises(TransitionNotAllowed):
        change.close()
    Approval.objects.filter(pk=retro.pk).update(status="APPROVED")
    change = ChangeRequest.objects.get(pk=change.pk)
    change.close()
    assert change.state == State.CLOSED


def test_a_stale_instance_cannot_overwrite_a_newer_state(draft):
    from django_fsm import ConcurrentTransition

    first = ChangeRequest.objects.get(pk=draft.pk)
    second = ChangeRequest.objects.get(pk=draft.pk)
    first.cancel()
    first.save()
    second.submit()
    with pytest.raises(ConcurrentTransition):
        second.save()
