"""Routing a change to its review: risk assessment on submit, the approvals the policy
requires, and reopening the review when what will run changes after approval."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import Group
from django.db.models import F
from django.utils import timezone
from guardian.shortcuts import assign_perm

from changes import access, risk, standard
from changes.models import Approval, ChangeRequest, State
from changes.policy import required_approvals
from changes.services.common import check_version, lock_change, notify_approvers, save_versioned
from portal.audit import audit_record
from portal.errors import Conflict, Invalid
from portal.notifications import notify
from portal.roles import Role
from portal.transactions import service


@service
def change_submit(
    *, change: ChangeRequest, by, version: int | None = None, now: datetime | None = None
) -> ChangeRequest:
    """Assess the risk, route the change and open its review, in one step."""
    now = now or timezone.now()
    locked = lock_change(change.pk)
    access.require(by, locked, "submit")
    check_version(locked, version)
    if locked.proposed_start <= now:
        raise Invalid("The proposed start is in the past; edit the draft and pick a new one.")
    if not locked.components.exists() or not locked.tenants.exists():
        raise Invalid("Name at least one component and one tenant before submitting.")
    assessment = risk.assess(locked, now=now)
    locked.risk_score = assessment.score
    locked.risk_level = assessment.level
    locked.risk_factors = assessment.factors_as_json()
    if assessment.override:
        locked.risk_factors.append(
            {
                "key": "override",
                "label": "Override",
                "value": locked.priority,
                "points": 0,
                "why": assessment.override,
            }
        )
    locked.risk_assessed_at = now
    locked.category = assessment.category
    locked.submitted_at = now
    pre = standard.preapproval(locked, assessment)
    if pre is not None and not pre.granted:
        locked.risk_factors.append(
            {
                "key": "template",
                "label": "Standard change template",
                "value": pre.version.public_id,
                "points": 0,
                "why": f"Not pre-approved: {pre.reason} It goes through the normal review.",
            }
        )
    locked.submit()
    save_versioned(
        locked,
        [
            "state",
            "risk_score",
            "risk_level",
            "risk_factors",
            "risk_assessed_at",
            "category",
            "submitted_at",
        ],
    )
    audit_record(
        action="change.submitted",
        user=by,
        role=Role.REQUESTER,
        obj=locked,
        details={
            "risk_score": assessment.score,
            "risk_level": assessment.level,
            "category": assessment.category,
        },
    )
    if pre is not None:
        audit_record(
            action="change.pre_approved" if pre.granted else "change.preapproval_refused",
            obj=locked,
            details={"template": pre.version.public_id, "reason": pre.reason},
        )
        if pre.granted:
            return _pre_approve(locked, now=now)
    approvals = _open_review(locked, now=now)
    locked.start_review()
    save_versioned(locked, ["state"])
    audit_record(
        action="change.review_started",
        obj=locked,
        details={
            "review": locked.review_name,
            "required": [f"{a.role} ({a.get_phase_display()})" for a in approvals],
        },
    )
    notify_approvers(locked, [a for a in approvals if a.phase == Approval.Phase.PRE])
    return locked


def _pre_approve(change: ChangeRequest, *, now: datetime) -> ChangeRequest:
    """Within its approved template: approved now, by the template's own approvals."""
    change.pre_approved = True
    change.pre_approve()
    change.decided_at = now
    save_versioned(change, ["state", "pre_approved", "decided_at"])
    notify(
        recipients=[change.requester],
        subject=f"{change.public_id} is pre-approved (standard change)",
        body=f"{change.title}. An operator schedules it into a routine window.",
        url=change.get_absolute_url(),
        dedup_key=f"change:{change.pk}:pre_approved",
    )
    return change


def _open_review(change: ChangeRequest, *, now: datetime) -> list[Approval]:
    approvals = []
    groups = {g.name: g for g in Group.objects.filter(name__in=Role.values)}
    for requirement in required_approvals(change):
        due = None
        if requirement.due_hours is not None and requirement.phase == Approval.Phase.PRE:
            due = now + timedelta(hours=requirement.due_hours)
        approval = Approval.objects.create(
            change=change,
            role=requirement.role,
            phase=requirement.phase,
            due_at=due,
            rule=requirement.rule,
            required_because=requirement.rule.description[:300],
        )
        assign_perm(Approval.permission, groups[requirement.role], approval)
        approvals.append(approval)
    if not any(a.phase == Approval.Phase.PRE for a in approvals):
        raise Invalid(
            f"The approval policy names no approver for a {change.get_category_display()} "
            f"of type {change.get_type_display()}; ask an administrator to fix the policy."
        )
    return approvals


@service
def change_reopen_review(*, change: ChangeRequest, by, reason: str) -> ChangeRequest:
    """What will run changed after approval: the approvals no longer hold, so the change
    goes back to review and its approvers are asked again. The caller has already taken
    the change out of any window it was scheduled in."""
    locked = lock_change(change.pk)
    if locked.state not in (State.APPROVED, State.SCHEDULED):
        raise Conflict(f"{locked.public_id} is not approved; its review is still open.")
    if locked.pre_approved:
        # What will run is no longer what the template's approvers approved: the
        # change goes through the normal review of its category.
        locked.pre_approved = False
        save_versioned(locked, ["pre_approved"])
        _open_review(locked, now=timezone.now())
    approvals = locked.approvals.filter(phase=Approval.Phase.PRE)
    approvals.update(
        status=Approval.Status.PENDING,
        decided_by=None,
        decided_at=None,
        comments="",
        version=F("version") + 1,
    )
    locked.reopen_review()
    locked.decided_at = None
    save_versioned(locked, ["state", "decided_at"])
    audit_record(action="change.review_reopened", user=by, obj=locked, details={"reason": reason})
    notify_approvers(locked, list(approvals))
    return locked
