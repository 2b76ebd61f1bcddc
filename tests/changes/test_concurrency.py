"""Concurrent decisions on real PostgreSQL: row locks make them queue, never race."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from changes.models import Approval, ChangeRequest, State
from changes.services import approval_decide, change_submit
from portal.audit import verify_chain
from portal.errors import Conflict
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _run_together(calls):
    """Start every call at the same moment; return (results, errors)."""
    barrier = threading.Barrier(len(calls))
    results, errors = [], []

    def run(call):
        try:
            barrier.wait(timeout=30)
            results.append(call())
        except Conflict as exc:
            errors.append(exc)
        except BaseException as exc:  # anything else fails the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results, errors


def test_twenty_deciders_on_one_approval_make_exactly_one_decision(make_user, make_change):
    change = make_change(type="SECURITY")
    change = change_submit(change=change, by=change.requester)
    approval = change.approvals.get()
    deciders = [make_user(f"sec{n}", ["SECURITY"]) for n in range(20)]
    calls = [
        (
            lambda u=u: approval_decide(
                approval=Approval.objects.get(pk=approval.pk), by=u, decision="APPROVED"
            )
        )
        for u in deciders
    ]
    results, errors = _run_together(calls)
    assert len(results) == 1
    assert len(errors) == 19 and all(isinstance(e, Conflict) for e in errors), errors
    assert AuditEvent.objects.filter(action="approval.approved").count() == 1
    assert AuditEvent.objects.filter(action="change.approved").count() == 1
    assert ChangeRequest.objects.get(pk=change.pk).state == State.APPROVED
    assert verify_chain().intact


@pytest.mark.parametrize("round_", range(3))
def test_approve_and_reject_racing_on_two_roles_end_rejected(
    make_user, make_change, tenant, other_tenant, round_
):
    security = make_user("sec", ["SECURITY"], tenants=[tenant, other_tenant])
    compliance = make_user("comp", ["COMPLIANCE"], tenants=[tenant, other_tenant])
    change = make_change(type="SECURITY", tenants=[tenant, other_tenant])
    change = change_submit(change=change, by=change.requester)
    sec = change.approvals.get(role="SECURITY")
    comp = change.approvals.get(role="COMPLIANCE")
    _, errors = _run_together(
        [
            lambda: approval_decide(approval=sec, by=security, decision="APPROVED"),
            lambda: approval_decide(
                approval=comp, by=compliance, decision="REJECTED", comment="no"
            ),
        ]
    )
    change = ChangeRequest.objects.get(pk=change.pk)
    statuses = dict(change.approvals.values_list("role", "status"))
    assert change.state == State.REJECTED
    assert statuses["COMPLIANCE"] == "REJECTED"
    if errors:
        # The rejection won the race: the approval arrived too late and says so.
        assert len(errors) == 1 and isinstance(errors[0], Conflict)
        assert "cannot be decided now" in errors[0].message
        assert statuses["SECURITY"] == "PENDING"
    else:
        assert statuses["SECURITY"] == "APPROVED"


@pytest.mark.parametrize("round_", range(3))
def test_two_last_approvals_racing_approve_the_change_once(
    make_user, make_change, tenant, other_tenant, round_
):
    security = make_user("sec", ["SECURITY"], tenants=[tenant, other_tenant])
    compliance = make_user("comp", ["COMPLIANCE"], tenants=[tenant, other_tenant])
    change = make_change(type="SECURITY", tenants=[tenant, other_tenant])
    change = change_submit(change=change, by=change.requester)
    sec = change.approvals.get(role="SECURITY")
    comp = change.approvals.get(role="COMPLIANCE")
    _, errors = _run_together(
        [
            lambda: approval_decide(approval=sec, by=security, decision="APPROVED"),
            lambda: approval_decide(approval=comp, by=compliance, decision="APPROVED"),
        ]
    )
    assert errors == []
    assert ChangeRequest.objects.get(pk=change.pk).state == State.APPROVED
    assert (
        AuditEvent.objects.filter(action="change.approved", object_id=change.public_id).count() == 1
    )
