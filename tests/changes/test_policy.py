"""Approval policy routing: each type × category gives the roles of DESIGN §3.2."""

from __future__ import annotations

import pytest

from changes.models import ApprovalRule
from changes.policy import required_approvals

pytestmark = pytest.mark.django_db

STANDARD_ROLE = {
    "SECURITY": "SECURITY",
    "FEATURE": "ENGINEERING",
    "PERFORMANCE": "ENGINEERING",
    "CONFIGURATION": "OPERATIONS",
}
TYPES = list(STANDARD_ROLE)


def _roles(change, phase="PRE"):
    return sorted(r.role for r in required_approvals(change) if r.phase == phase)


@pytest.mark.parametrize("change_type", TYPES)
def test_a_standard_change_needs_the_role_for_its_type(make_change, change_type):
    change = make_change(type=change_type, category="STANDARD")
    assert _roles(change) == [STANDARD_ROLE[change_type]]


@pytest.mark.parametrize("change_type", TYPES)
def test_a_standard_change_on_two_tenants_also_needs_compliance(
    make_change, tenant, other_tenant, change_type
):
    change = make_change(type=change_type, category="STANDARD", tenants=[tenant, other_tenant])
    assert _roles(change) == sorted([STANDARD_ROLE[change_type], "COMPLIANCE"])


@pytest.mark.parametrize("change_type", TYPES)
def test_a_blackout_exception_needs_compliance(make_change, change_type):
    change = make_change(type=change_type, category="STANDARD", blackout_exception=True)
    assert "COMPLIANCE" in _roles(change)


@pytest.mark.parametrize("change_type", TYPES)
def test_an_emergency_change_gets_immediate_review(make_change, change_type):
    change = make_change(type=change_type, category="EMERGENCY")
    assert _roles(change) == ["ENGINEERING", "OPERATIONS", "SECURITY"]
    assert {r.due_hours for r in required_approvals(change)} == {4}


@pytest.mark.parametrize("change_type", TYPES)
def test_an_emergency_change_on_two_tenants_adds_compliance(
    make_change, tenant, other_tenant, change_type
):
    change = make_change(type=change_type, category="EMERGENCY", tenants=[tenant, other_tenant])
    assert _roles(change) == ["COMPLIANCE", "ENGINEERING", "OPERATIONS", "SECURITY"]


@pytest.mark.parametrize("change_type", TYPES)
def test_an_urgent_change_goes_to_the_emergency_committee(
    make_change, tenant, other_tenant, change_type
):
    change = make_change(type=change_type, category="URGENT", tenants=[tenant, other_tenant])
    assert _roles(change) == ["CTO", "HEAD_OF_SECURITY"]
    assert _roles(change, "RETROACTIVE") == ["COMPLIANCE", "ENGINEERING", "OPERATIONS", "SECURITY"]
    assert {r.due_hours for r in required_approvals(change) if r.phase == "PRE"} == {1}


def test_each_requirement_names_the_rule_that_required_it(make_change, tenant, other_tenant):
    change = make_change(type="SECURITY", category="STANDARD", tenants=[tenant, other_tenant])
    reasons = {r.role: r.rule.description for r in required_approvals(change)}
    assert reasons["COMPLIANCE"] == "More than one tenant impacted: Compliance approves."


def test_the_policy_is_data_the_admin_can_change(make_change):
    ApprovalRule.objects.create(
        category="STANDARD", change_type="FEATURE", role="SECURITY", description="Also security"
    )
    change = make_change(type="FEATURE", category="STANDARD")
    assert _roles(change) == ["ENGINEERING", "SECURITY"]


def test_submitting_creates_one_approval_per_role_with_its_reason(
    make_change, tenant, other_tenant
):
    from changes.services import change_submit

    change = make_change(type="SECURITY", priority="LOW", tenants=[tenant, other_tenant])
    change = change_submit(change=change, by=change.requester)
    approvals = {a.role: a for a in change.approvals.all()}
    assert set(approvals) == {"SECURITY", "COMPLIANCE"}
    assert approvals["COMPLIANCE"].required_because.startswith("More than one tenant")
    assert all(a.due_at is not None for a in approvals.values())
