"""The standard change catalog: a template approved once by the roles the policy names,
changes filed from it pre-approved while they stay within it (risk still assessed,
scheduling still only into a valid routine window), new versions, retirement."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from changes.models import ChangeRequest, State, TemplateApproval, TemplateStatus
from changes.services import (
    change_file_from_template,
    template_approval_decide,
    template_propose,
    template_retire,
)
from maintenance.models import ChangeProcedure, MaintenancePolicy, MaintenanceWindow, WindowType
from maintenance.services import change_procedure_add, slot_create
from portal.errors import Conflict, Invalid, NotAllowed, SeparationOfDuties
from portal.models import AuditEvent
from tests.factories import ChangeRequestFactory, ComponentFactory

pytestmark = pytest.mark.django_db

TEMPLATE = {
    "name": "Rotate TLS certificates",
    "title_pattern": "Rotate TLS certificates on {component} for {tenant}",
    "description": "Replace the expiring certificates on the edge.",
    "type": "SECURITY",
    "implementation_plan": "Deploy the new bundle with the rollout tool.",
    "backout_plan": "Redeploy the previous bundle.",
    "verification_plan": "Check the served certificate's expiry date.",
    "max_window_minutes": 60,
    "risk_ceiling": 30,
}


def _actions(obj) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_id=obj.public_id)
        .order_by("sequence")
        .values_list("action", flat=True)
    )


@pytest.fixture
def propose(engineer, tenant, component):
    def propose(*, by=None, template=None, tenants=None, components=None, **overrides):
        return template_propose(
            by=by or engineer,
            data={**TEMPLATE, **overrides},
            components=components or [component],
            tenants=tenants or [tenant],
            template=template,
        )

    return propose


@pytest.fixture
def approved(propose, security):
    version = propose()
    template_approval_decide(
        approval=version.approvals.get(role="SECURITY"), by=security, decision="APPROVED"
    )
    version.refresh_from_db()
    return version


def _file(template, by, component, tenant, **data):
    data.setdefault("proposed_start", timezone.now() + timedelta(days=10))
    data.setdefault("window_minutes", 30)
    data.setdefault("priority", "LOW")
    return change_file_from_template(
        template=template, by=by, data=data, components=[component], tenants=[tenant]
    )


def test_a_template_is_approved_once_by_the_roles_the_policy_names(propose, security):
    version = propose()

    assert version.status == TemplateStatus.PENDING
    assert [a.role for a in version.approvals.all()] == ["SECURITY"]
    assert version.approvals.get().required_because.startswith("Standard SECURITY change")

    template_approval_decide(
        approval=version.approvals.get(), by=security, decision="APPROVED", comment="Routine."
    )

    version.refresh_from_db()
    assert version.status == TemplateStatus.APPROVED
    assert _actions(version) == [
        "template.proposed",
        "template.approved",
        "template.version_approved",
    ]


def test_compliance_approves_too_when_the_template_covers_several_tenants(
    propose, tenant, other_tenant, compliance, make_user
):
    both = make_user("both", ["ENGINEERING"], tenants=[tenant, other_tenant])

    version = propose(by=both, tenants=[tenant, other_tenant])

    assert sorted(a.role for a in version.approvals.all()) == ["COMPLIANCE", "SECURITY"]


def test_a_rejection_rejects_the_version(propose, security):
    version = propose()

    template_approval_decide(
        approval=version.approvals.get(), by=security, decision="REJECTED", comment="Too broad."
    )

    version.refresh_from_db()
    assert version.status == TemplateStatus.REJECTED


def test_it_refuses_the_proposer_deciding_their_own_template(propose, make_user):
    author = make_user("author", ["REQUESTER", "SECURITY"])
    version = propose(by=author)

    with pytest.raises(SeparationOfDuties):
        template_approval_decide(approval=version.approvals.get(), by=author, decision="APPROVED")

    assert TemplateApproval.objects.get(pk=version.approvals.get().pk).status == "PENDING"
    denied = AuditEvent.objects.filter(action="template.refused", outcome="DENIED")
    assert denied.count() == 1


def test_it_refuses_a_decider_without_the_role(propose, operator):
    version = propose()

    with pytest.raises(NotAllowed):
        template_approval_decide(approval=version.approvals.get(), by=operator, decision="APPROVED")


def test_it_refuses_a_stale_decision(propose, security):
    version = propose()
    approval = version.approvals.get()

    with pytest.raises(Conflict):
        template_approval_decide(
            approval=approval, by=security, decision="APPROVED", version=approval.version + 1
        )


def test_it_refuses_a_title_pattern_that_reads_attributes(propose):
    with pytest.raises(Invalid, match="may only use"):
        propose(title_pattern="Rotate {component.__class__}")
    with pytest.raises(Invalid, match="unmatched brace"):
        propose(title_pattern="Rotate {component")


def test_it_refuses_a_ceiling_at_the_high_threshold_and_a_long_window(propose):
    with pytest.raises(Invalid, match="risk ceiling must be 0 to 44"):
        propose(risk_ceiling=45)
    with pytest.raises(Invalid, match="1 to 240 minutes"):
        propose(max_window_minutes=300)


def test_a_change_filed_from_an_approved_template_is_pre_approved(
    approved, requester, component, tenant
):
    change = _file(approved.template, requester, component, tenant)

    assert change.state == State.APPROVED
    assert change.pre_approved
    assert change.category == "STANDARD"
    assert change.category_label == "Standard (pre-approved)"
    assert change.risk_level == "LOW" and change.risk_score is not None
    assert change.title == f"Rotate TLS certificates on {component.name} for {tenant.name}"
    assert change.template_version == approved
    assert not change.approvals.exists()
    assert _actions(change) == [
        "change.created",
        "change.filed_from_template",
        "change.submitted",
        "change.pre_approved",
    ]


def test_above_the_risk_ceiling_it_falls_back_to_the_normal_review(
    propose, security, requester, component, tenant
):
    version = propose(risk_ceiling=0)
    template_approval_decide(approval=version.approvals.get(), by=security, decision="APPROVED")

    change = _file(version.template, requester, component, tenant)

    assert change.state == State.IN_REVIEW
    assert not change.pre_approved
    assert [a.role for a in change.approvals.all()] == ["SECURITY"]
    factor = next(f for f in change.risk_factors if f["key"] == "template")
    assert "above the template's ceiling of 0" in factor["why"]
    assert "change.preapproval_refused" in _actions(change)


def test_a_critical_priority_falls_back_to_the_emergency_committee(
    approved, requester, component, tenant
):
    change = _file(approved.template, requester, component, tenant, priority="CRITICAL")

    assert change.state == State.IN_REVIEW
    assert change.category == "URGENT"
    assert {a.role for a in change.approvals.filter(phase="PRE")} == {"CTO", "HEAD_OF_SECURITY"}


def test_it_refuses_what_the_template_does_not_cover(approved, requester, component, tenant):
    elsewhere = ComponentFactory(name="billing-db")
    count = ChangeRequest.objects.count()

    with pytest.raises(Invalid, match="does not cover every component"):
        _file(approved.template, requester, elsewhere, tenant)
    with pytest.raises(Invalid, match="1 to 60 minutes"):
        _file(approved.template, requester, component, tenant, window_minutes=90)

    assert ChangeRequest.objects.count() == count


def test_a_template_without_an_approved_version_cannot_be_used(
    propose, requester, component, tenant
):
    version = propose()

    with pytest.raises(Conflict, match="no approved version"):
        _file(version.template, requester, component, tenant)


def test_a_retired_template_is_refused(approved, engineer, requester, component, tenant):
    template_retire(template=approved.template, by=engineer, reason="Certificates are automated.")

    with pytest.raises(Conflict, match="retired"):
        _file(approved.template, requester, component, tenant)
    assert "template.retired" in _actions(approved.template)


def test_only_the_author_or_an_operator_retires_a_template(approved, requester):
    with pytest.raises(NotAllowed):
        template_retire(template=approved.template, by=requester, reason="Mine now.")


def test_editing_proposes_a_new_version_while_the_approved_one_stays_in_use(
    approved, propose, security, requester, component, tenant
):
    template = approved.template
    second = propose(template=template, max_window_minutes=120)

    change = _file(template, requester, component, tenant)
    assert change.template_version == approved
    with pytest.raises(Conflict, match="awaiting approval"):
        propose(template=template)

    template_approval_decide(approval=second.approvals.get(), by=security, decision="APPROVED")

    approved.refresh_from_db()
    second.refresh_from_db()
    assert (approved.status, second.status) == (TemplateStatus.SUPERSEDED, TemplateStatus.APPROVED)
    # Another day: on the same one the first change would be a conflicting change.
    later = _file(
        template,
        requester,
        component,
        tenant,
        window_minutes=90,
        proposed_start=timezone.now() + timedelta(days=20),
    )
    assert later.template_version == second and later.pre_approved


def test_it_refuses_a_stale_edit(approved, propose):
    stale = approved.template.version

    propose(template=approved.template)

    with pytest.raises(Conflict):
        template_retire(
            template=approved.template, by=approved.proposed_by, reason="x", version=stale
        )


def test_the_procedures_of_a_proven_change_go_with_the_template(
    engineer, security, requester, tenant, component
):
    source = ChangeRequestFactory(requester=engineer, tenants=[tenant], components=[component])
    change_procedure_add(
        change=source,
        by=engineer,
        kind="manual_checklist",
        params={"steps": "Drain node A\nRenew the certificate", "estimated_minutes": 20},
    )
    version = template_propose(
        by=engineer,
        data=TEMPLATE,
        components=[component],
        tenants=[tenant],
        source_change=source,
    )
    template_approval_decide(approval=version.approvals.get(), by=security, decision="APPROVED")

    change = _file(version.template, requester, component, tenant)

    assert version.procedures[0]["kind"] == "manual_checklist"
    item = ChangeProcedure.objects.get(change=change)
    assert item.params == {"steps": ["Drain node A", "Renew the certificate"],
                           "estimated_minutes": 20}  # fmt: skip
    assert change.state == State.APPROVED and change.pre_approved


def test_changing_its_procedures_after_pre_approval_opens_the_normal_review(
    approved, requester, component, tenant
):
    change = _file(approved.template, requester, component, tenant)

    change_procedure_add(
        change=change,
        by=requester,
        kind="manual_checklist",
        params={"steps": "Something else", "estimated_minutes": 5},
    )

    change = ChangeRequest.objects.get(pk=change.pk)
    assert change.state == State.IN_REVIEW
    assert not change.pre_approved
    assert [a.role for a in change.approvals.all()] == ["SECURITY"]


def _routine_window(start: datetime) -> MaintenanceWindow:
    return MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE, start=start, duration_minutes=240, notification_offsets=[60]
    )


def _sunday_in_the_last_week_of_a_month(now: datetime) -> datetime:
    day = (now + timedelta(days=3)).date()
    while True:
        last = calendar.monthrange(day.year, day.month)[1]
        if day.weekday() == 6 and day.day > last - 7:
            return datetime.combine(day, time(1, 0), tzinfo=UTC)
        day += timedelta(days=1)


def test_a_pre_approved_change_is_still_refused_a_blacked_out_or_emergency_window(
    approved, requester, operator, component, tenant
):
    MaintenancePolicy.objects.filter(type="ROUTINE").update(end_of_month_days=7)
    blacked_out = _routine_window(_sunday_in_the_last_week_of_a_month(timezone.now()))
    emergency = MaintenanceWindow.objects.create(
        type=WindowType.EMERGENCY,
        start=timezone.now() + timedelta(days=3),
        duration_minutes=60,
        notification_offsets=[60],
    )
    change = _file(approved.template, requester, component, tenant)

    with pytest.raises(Invalid, match="blacked out"):
        slot_create(change=change, window=blacked_out, by=operator)
    with pytest.raises(Invalid, match="routine window only"):
        slot_create(change=change, window=emergency, by=operator)

    assert ChangeRequest.objects.get(pk=change.pk).state == State.APPROVED
    refused = AuditEvent.objects.filter(action="change.schedule_refused", outcome="DENIED")
    assert refused.count() == 2


def test_a_pre_approved_change_goes_into_a_valid_routine_window(
    approved, requester, operator, component, tenant
):
    MaintenancePolicy.objects.update(end_of_month_days=0, holiday_country="", holiday_market="")
    window = _routine_window(timezone.now() + timedelta(days=5))
    change = _file(approved.template, requester, component, tenant)

    slot_create(change=change, window=window, by=operator)

    assert ChangeRequest.objects.get(pk=change.pk).state == State.SCHEDULED
