"""Every write to changes and approvals: permission check, row lock, transition, save,
audit row and after-commit notifications, in one transaction."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_fsm import can_proceed
from guardian.shortcuts import assign_perm

from changes import access, risk
from changes.errors import Conflict, Invalid, NotAllowed, SeparationOfDuties
from changes.models import (
    CANCELLABLE_STATES,
    Approval,
    ChangeRequest,
    State,
)
from changes.policy import required_approvals
from portal.audit import audit_record
from portal.models import AuditEvent, Component, Service, Tenant
from portal.notifications import notify
from portal.roles import Role

EDITABLE_FIELDS = (
    "title",
    "description",
    "type",
    "priority",
    "proposed_start",
    "window_minutes",
    "blackout_exception",
    "implementation_plan",
    "backout_plan",
    "verification_plan",
)


def _lock_change(change_id: int) -> ChangeRequest:
    return ChangeRequest.objects.select_for_update().get(pk=change_id)


def _check_version(change: ChangeRequest, version: int | str | None) -> None:
    if version is None:
        return
    if not str(version).isdecimal() or int(version) != change.version:
        raise Conflict(
            f"{change.public_id} was changed by someone else since you opened this page. "
            "Reload it to see the current version, then try again."
        )


class _Denial(Exception):
    """Raised inside a service's transaction; audited after it has rolled back."""

    def __init__(self, *, user, action, change, reason, role, exc, details):
        super().__init__(reason)
        self.user, self.action, self.change, self.reason = user, action, change, reason
        self.role, self.exc, self.details = role, exc, details


def refuse(
    *,
    user,
    action: str,
    change: ChangeRequest,
    reason: str,
    role: str = "",
    exc: type[NotAllowed] = NotAllowed,
    details: dict | None = None,
) -> None:
    raise _Denial(
        user=user,
        action=action,
        change=change,
        reason=reason,
        role=role,
        exc=exc,
        details=details or {},
    )


def audits_refusals(service):
    """Every refusal is audited: the service's own transaction rolls back, so the
    DENIED row is written in a transaction of its own once that one has ended."""

    @functools.wraps(service)
    def wrapper(*args, **kwargs):
        try:
            return service(*args, **kwargs)
        except _Denial as denial:
            with transaction.atomic():
                audit_record(
                    action=denial.action,
                    user=denial.user,
                    role=denial.role,
                    obj=denial.change,
                    outcome=AuditEvent.Outcome.DENIED,
                    details={"reason": denial.reason, **denial.details},
                )
            raise denial.exc(denial.reason) from None

    return wrapper


def change_save_versioned(change: ChangeRequest, fields: Iterable[str]) -> None:
    """Save state fields and bump the version that stale forms are checked against."""
    change.version = F("version") + 1
    change.save(update_fields=[*fields, "version", "updated_at"])
    change.refresh_from_db(fields=["version"])


def _set_impact(change: ChangeRequest, *, components, services, tenants) -> None:
    change.components.set(components)
    change.services.set(services)
    change.tenants.set(tenants)


def _check_impact_visible(by, tenants: Iterable[Tenant]) -> None:
    allowed = set(access.visible_tenants(by).values_list("pk", flat=True))
    hidden = [t for t in tenants if t.pk not in allowed]
    if hidden:
        raise Invalid("You can only name tenants you have access to.")


# --- change lifecycle ---------------------------------------------------------------


MAX_LEAD = timedelta(days=2 * 365)


def _check_schedule(data: dict[str, Any]) -> None:
    start, minutes = data.get("proposed_start"), data.get("window_minutes")
    if start is None or start > timezone.now() + MAX_LEAD:
        raise Invalid("The proposed start must be within the next two years.")
    if not isinstance(minutes, int) or not 1 <= minutes <= 1440:
        raise Invalid("The window must be between 1 and 1440 minutes.")


def change_create(
    *,
    by,
    data: dict[str, Any],
    components: Iterable[Component],
    services: Iterable[Service],
    tenants: Iterable[Tenant],
    copied_from: ChangeRequest | None = None,
) -> ChangeRequest:
    if not access.can_create(by):
        raise NotAllowed("Your roles do not allow filing change requests.")
    tenants = list(tenants)
    _check_impact_visible(by, tenants)
    _check_schedule(data)
    with transaction.atomic(durable=True):
        change = ChangeRequest(
            requester=by,
            copied_from=copied_from,
            **{k: data[k] for k in EDITABLE_FIELDS},
        )
        change.save()
        _set_impact(change, components=components, services=services, tenants=tenants)
        audit_record(
            action="change.created",
            user=by,
            role=Role.REQUESTER,
            obj=change,
            details={
                "title": change.title,
                "copied_from": copied_from.public_id if copied_from else None,
            },
        )
    return change


def change_update(
    *,
    change: ChangeRequest,
    by,
    data: dict[str, Any],
    components: Iterable[Component],
    services: Iterable[Service],
    tenants: Iterable[Tenant],
    version: int | None,
) -> ChangeRequest:
    tenants = list(tenants)
    _check_impact_visible(by, tenants)
    _check_schedule(data)
    with transaction.atomic(durable=True):
        locked = _lock_change(change.pk)
        if not access.is_requester(by, locked):
            raise NotAllowed("Only the requester may edit this change.")
        if locked.state != State.DRAFT:
            raise Conflict(
                f"{locked.public_id} is {locked.get_state_display()}; only drafts can be edited."
            )
        _check_version(locked, version)
        changed = [k for k in EDITABLE_FIELDS if getattr(locked, k) != data[k]]
        for key in EDITABLE_FIELDS:
            setattr(locked, key, data[key])
        change_save_versioned(locked, EDITABLE_FIELDS)
        _set_impact(locked, components=components, services=services, tenants=tenants)
        audit_record(
            action="change.updated",
            user=by,
            role=Role.REQUESTER,
            obj=locked,
            details={"fields": changed},
        )
    return locked


def change_submit(
    *, change: ChangeRequest, by, version: int | None = None, now: datetime | None = None
) -> ChangeRequest:
    """Assess the risk, route the change and open its review, in one step."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        locked = _lock_change(change.pk)
        if not access.is_requester(by, locked):
            raise NotAllowed("Only the requester may submit this change.")
        _check_version(locked, version)
        if locked.state != State.DRAFT:
            raise Conflict(f"{locked.public_id} was already submitted.")
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
        locked.submit()
        change_save_versioned(
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
        approvals = _open_review(locked, now=now)
        locked.start_review()
        change_save_versioned(locked, ["state"])
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
        assign_perm("changes.decide_approval", groups[requirement.role], approval)
        approvals.append(approval)
    if not any(a.phase == Approval.Phase.PRE for a in approvals):
        raise Invalid(
            f"The approval policy names no approver for a {change.get_category_display()} "
            f"of type {change.get_type_display()}; ask an administrator to fix the policy."
        )
    return approvals


def notify_approvers(change: ChangeRequest, approvals: list[Approval]) -> None:
    for approval in approvals:
        recipients = access.users_who_can_see(change, role=approval.role)
        due = f" Due {approval.due_at:%Y-%m-%d %H:%M} UTC." if approval.due_at else ""
        notify(
            recipients=recipients,
            subject=f"Approval needed: {change.public_id} {change.title}",
            body=(
                f"{change.get_category_display()} ({change.review_name}), risk "
                f"{change.risk_level} ({change.risk_score}). Your role: "
                f"{approval.get_role_display()}.{due}"
            ),
            url=approval.get_absolute_url(),
            dedup_key=f"approval:{approval.pk}:requested",
        )


def change_cancel(
    *, change: ChangeRequest, by, reason: str = "", version: int | None = None
) -> ChangeRequest:
    with transaction.atomic(durable=True):
        locked = _lock_change(change.pk)
        if not access.is_requester(by, locked):
            raise NotAllowed("Only the requester may cancel this change.")
        _check_version(locked, version)
        if locked.state not in CANCELLABLE_STATES:
            raise Conflict(
                f"{locked.public_id} is {locked.get_state_display()}; a change can only be "
                "cancelled before its execution starts."
            )
        locked.cancel()
        change_save_versioned(locked, ["state"])
        audit_record(
            action="change.cancelled",
            user=by,
            role=Role.REQUESTER,
            obj=locked,
            details={"reason": reason[:2000]},
        )
        _notify_pending_approvers_closed(locked, "cancelled")
    return locked


def _notify_pending_approvers_closed(change: ChangeRequest, outcome: str) -> None:
    for approval in change.approvals.filter(status=Approval.Status.PENDING):
        notify(
            recipients=access.users_who_can_see(change, role=approval.role),
            subject=f"No longer needed: {change.public_id} was {outcome}",
            url=change.get_absolute_url(),
            dedup_key=f"approval:{approval.pk}:closed",
        )


def change_copy(*, change: ChangeRequest, by) -> ChangeRequest:
    """'Copy to new draft' for a rejected or cancelled change."""
    if change.state not in (State.REJECTED, State.CANCELLED):
        raise Conflict("Only rejected or cancelled changes can be copied to a new draft.")
    data = {k: getattr(change, k) for k in EDITABLE_FIELDS}
    if data["proposed_start"] <= timezone.now():
        data["proposed_start"] = timezone.now() + timedelta(days=7)
    visible = set(access.visible_tenants(by).values_list("pk", flat=True))
    return change_create(
        by=by,
        data=data,
        components=list(change.components.all()),
        services=list(change.services.all()),
        tenants=[t for t in change.tenants.all() if t.pk in visible],
        copied_from=change,
    )


# --- approvals ------------------------------------------------------------------------


@audits_refusals
def approval_decide(
    *,
    approval: Approval,
    by,
    decision: str,
    comment: str = "",
    version: int | None = None,
    now: datetime | None = None,
) -> Approval:
    """Record one decision; the first rejection rejects the change, the last approval
    approves it. Locks the change, then the approval, so concurrent decisions queue."""
    now = now or timezone.now()
    comment = (comment or "").strip()
    if decision not in (Approval.Status.APPROVED, Approval.Status.REJECTED):
        raise Invalid("Choose Approve or Reject.")
    with transaction.atomic(durable=True):
        change = _lock_change(approval.change_id)
        locked = Approval.objects.select_for_update().get(pk=approval.pk)
        locked.change = change
        refusal = access.sod_refusal(by, locked)
        if refusal:
            refuse(
                user=by,
                action="approval.refused",
                change=change,
                reason=refusal,
                role=locked.role,
                exc=SeparationOfDuties,
                details={"approval": locked.pk, "approval_role": locked.role},
            )
        if not access.may_decide(by, locked):
            refuse(
                user=by,
                action="approval.refused",
                change=change,
                role=locked.role,
                reason=f"You may not decide the {locked.get_role_display()} approval.",
                details={"approval": locked.pk},
            )
        # Refusals by duty and permission come first (audited); then the input.
        if decision == Approval.Status.REJECTED and not comment:
            raise Invalid("A rejection needs a comment explaining why.")
        if locked.status != Approval.Status.PENDING:
            who = locked.decided_by.get_username() if locked.decided_by else "someone"
            raise Conflict(
                f"This approval was already {locked.get_status_display().lower()} by {who} "
                f"at {locked.decided_at:%Y-%m-%d %H:%M} UTC."
            )
        if version is not None and (not str(version).isdecimal() or int(version) != locked.version):
            raise Conflict("This approval changed since you opened it. Reload and try again.")
        if not access.decision_open(locked):
            raise Conflict(
                f"{change.public_id} is {change.get_state_display()}; this approval cannot be "
                "decided now."
            )
        locked.status = decision
        locked.comments = comment
        locked.decided_by = by
        locked.decided_at = now
        locked.version = F("version") + 1
        locked.save(update_fields=["status", "comments", "decided_by", "decided_at", "version"])
        locked.refresh_from_db(fields=["version"])
        audit_record(
            action=f"approval.{decision.lower()}",
            user=by,
            role=locked.role,
            acting_for=locked.delegated_by if locked.delegated_to_id == by.pk else None,
            obj=change,
            details={
                "approval": locked.pk,
                "approval_role": locked.role,
                "phase": locked.phase,
                "comment": comment[:2000],
            },
        )
        _after_decision(change, locked, by=by, now=now)
    return locked


def _after_decision(change: ChangeRequest, approval: Approval, *, by, now: datetime) -> None:
    verb = "approved" if approval.status == Approval.Status.APPROVED else "rejected"
    notify(
        recipients=[change.requester],
        subject=f"{change.public_id}: {approval.get_role_display()} {verb}",
        body=f"{by.get_full_name() or by.get_username()}: {approval.comments or '(no comment)'}",
        url=change.get_absolute_url(),
        dedup_key=f"approval:{approval.pk}:decided",
    )
    if approval.phase != Approval.Phase.PRE:
        return
    if can_proceed(change.reject):
        change.reject()
    elif can_proceed(change.approve):
        change.approve()
    else:
        return
    change.decided_at = now
    change_save_versioned(change, ["state", "decided_at"])
    audit_record(
        action=f"change.{change.state}",
        obj=change,
        details={"decisive_approval": approval.pk, "role": approval.role},
    )
    notify(
        recipients=[change.requester],
        subject=f"{change.public_id} was {change.get_state_display().lower()}",
        body=change.title,
        url=change.get_absolute_url(),
        dedup_key=f"change:{change.pk}:outcome:{change.state}",
    )
    if change.state == State.REJECTED:
        _notify_pending_approvers_closed(change, "rejected")


@audits_refusals
def approval_delegate(*, approval: Approval, by, to_user) -> Approval:
    """Let a named user decide this one approval (the same permission, audited)."""
    with transaction.atomic(durable=True):
        change = _lock_change(approval.change_id)
        locked = Approval.objects.select_for_update().get(pk=approval.pk)
        locked.change = change
        if not access.may_decide(by, locked) or access.sod_refusal(by, locked):
            refuse(
                user=by,
                action="approval.delegate_refused",
                change=change,
                role=locked.role,
                reason="Only someone who may decide this approval can delegate it.",
                details={"approval": locked.pk},
            )
        if locked.status != Approval.Status.PENDING:
            raise Conflict("This approval is already decided.")
        if to_user.pk == change.requester_id:
            refuse(
                user=by,
                action="approval.delegate_refused",
                change=change,
                role=locked.role,
                reason="An approval cannot be delegated to the change's requester.",
                exc=SeparationOfDuties,
                details={"approval": locked.pk},
            )
        if not to_user.is_active:
            raise Invalid("That user is not active.")
        assign_perm("changes.decide_approval", to_user, locked)
        locked.delegated_to = to_user
        locked.delegated_by = by
        locked.version = F("version") + 1
        locked.save(update_fields=["delegated_to", "delegated_by", "version"])
        locked.refresh_from_db(fields=["version"])
        audit_record(
            action="approval.delegated",
            user=by,
            role=locked.role,
            obj=change,
            details={"approval": locked.pk, "to": to_user.get_username()},
        )
        notify(
            recipients=[to_user],
            subject=f"Approval delegated to you: {change.public_id} ({locked.get_role_display()})",
            body=f"Delegated by {by.get_username()}.",
            url=locked.get_absolute_url(),
            dedup_key=f"approval:{locked.pk}:delegated:{to_user.pk}",
        )
    return locked


def approvals_escalate_overdue(*, now: datetime | None = None) -> int:
    """Escalate each overdue approval once: to its role group and HEAD_OF_SECURITY."""
    now = now or timezone.now()
    User = get_user_model()
    overdue = list(
        Approval.objects.filter(
            status=Approval.Status.PENDING,
            phase=Approval.Phase.PRE,
            due_at__lt=now,
            escalated_at__isnull=True,
            change__state=State.IN_REVIEW,
        ).values_list("pk", flat=True)
    )
    escalated = 0
    for approval_id in overdue:
        with transaction.atomic(durable=True):
            approval = (
                Approval.objects.select_for_update(skip_locked=True)
                .select_related("change", "change__requester")
                .filter(pk=approval_id, escalated_at__isnull=True)
                .first()
            )
            if approval is None:
                continue
            approval.escalated_at = now
            approval.save(update_fields=["escalated_at"])
            change = approval.change
            recipients = list(access.users_who_can_see(change, role=approval.role)) + list(
                User.objects.filter(groups__name=Role.HEAD_OF_SECURITY, is_active=True)
            )
            notify(
                recipients=[u for u in recipients if u.pk != change.requester_id],
                subject=f"OVERDUE approval: {change.public_id} ({approval.get_role_display()})",
                body=(
                    f"Due {approval.due_at:%Y-%m-%d %H:%M} UTC and still pending. "
                    f"{change.get_category_display()}: {change.title}"
                ),
                url=approval.get_absolute_url(),
                dedup_key=f"approval:{approval.pk}:escalated",
            )
            audit_record(
                action="approval.escalated",
                obj=change,
                details={"approval": approval.pk, "role": approval.role},
            )
            escalated += 1
    return escalated
