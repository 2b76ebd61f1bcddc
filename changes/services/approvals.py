"""Deciding a change's approvals: the first rejection rejects the change, the last
approval approves it; retroactive reviews ratify an urgent change after it ran."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django_fsm import can_proceed

from changes import access, hooks
from changes.models import EXECUTED_STATES, Approval, ChangeRequest, State
from changes.services import decisions
from changes.services.common import (
    lock_change,
    notify_pending_approvers_closed,
    save_versioned,
)
from portal.audit import audit_record
from portal.errors import Conflict
from portal.notifications import notify
from portal.roles import Role
from portal.transactions import service


def _lock_subject(approval: Approval) -> ChangeRequest:
    return lock_change(approval.change_id)


def _attach(approval: Approval, change: ChangeRequest) -> None:
    approval.change = change


def _closed_reason(approval: Approval) -> str | None:
    if access.decision_open(approval):
        return None
    change = approval.change
    return (
        f"{change.public_id} is {change.get_state_display()}; this approval cannot be decided now."
    )


RULES = decisions.Rules(
    lock_subject=_lock_subject,
    attach=_attach,
    sod_refusal=access.sod_refusal,
    closed_reason=_closed_reason,
    delegate_refusal=access.delegate_refusal,
    audit_prefix="approval",
)
decisions.register_kind(Approval, RULES)


@service
def approval_decide(
    *,
    approval: Approval,
    by,
    decision: str,
    comment: str = "",
    version: int | None = None,
    now: datetime | None = None,
) -> Approval:
    """Record one decision. Locks the change, then the approval, so concurrent decisions
    queue; exactly one of them records, the others get a clear conflict."""
    now = now or timezone.now()
    change, locked = decisions.decide(
        model=Approval,
        approval=approval,
        rules=RULES,
        by=by,
        decision=decision,
        comment=comment,
        version=version,
        now=now,
    )
    _after_decision(change, locked, by=by, now=now)
    hooks.approval_decided(locked, by=by, now=now)
    hooks.change_moved(change)
    return locked


def _after_decision(change: ChangeRequest, approval: Approval, *, by, now: datetime) -> None:
    verb = "approved" if approval.status == Approval.Status.APPROVED else "rejected"
    notify(
        recipients=[change.requester],
        subject=f"{change.public_id}: {approval.get_role_display()} {verb}",
        body=f"{by.get_full_name() or by.get_username()}: {approval.comments or '(no comment)'}",
        url=change.get_absolute_url(),
        dedup_key=f"approval:{approval.pk}:decided:{approval.version}",
    )
    if approval.phase == Approval.Phase.RETROACTIVE:
        if approval.status == Approval.Status.REJECTED:
            _ratification_refused(change, approval)
        return
    if can_proceed(change.reject):
        change.reject()
    elif can_proceed(change.approve):
        change.approve()
    else:
        return
    change.decided_at = now
    save_versioned(change, ["state", "decided_at"])
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
        dedup_key=f"change:{change.pk}:outcome:{change.state}:{change.version}",
    )
    if change.state == State.REJECTED:
        notify_pending_approvers_closed(change, "rejected")


def _ratification_refused(change: ChangeRequest, approval: Approval) -> None:
    """A refused ratification is not a pass: the change cannot close until a corrective
    action is recorded, and the Head of Security and Compliance are told at once."""
    audit_record(
        action="change.ratification_refused",
        obj=change,
        details={"approval": approval.pk, "role": approval.role, "comment": approval.comments},
    )
    User = get_user_model()
    notify(
        recipients=User.objects.filter(
            groups__name__in=[Role.HEAD_OF_SECURITY, Role.COMPLIANCE], is_active=True
        ).distinct(),
        subject=f"Ratification refused: {change.public_id} ({approval.get_role_display()})",
        body=(
            f"{approval.decided_by.get_username() if approval.decided_by else 'An approver'}"
            f" refused to ratify the urgent change “{change.title}”: {approval.comments}\n"
            "It cannot close until a corrective action (a linked change or an incident "
            "note) is recorded."
        ),
        url=change.get_absolute_url(),
        dedup_key=f"approval:{approval.pk}:ratification_refused",
    )


@service
def approval_delegate(
    *, approval: Approval, by, to_user, days: int = decisions.DELEGATION_DAYS, now=None
) -> Approval:
    """Let a named user decide this one approval for a limited time (audited)."""
    return decisions.delegate(
        model=Approval,
        approval=approval,
        rules=RULES,
        by=by,
        to_user=to_user,
        now=now or timezone.now(),
        days=days,
    )


@service
def approval_delegation_revoke(*, approval: Approval, by, now=None) -> Approval:
    return decisions.end_delegation(
        model=Approval, approval=approval, rules=RULES, by=by, now=now or timezone.now()
    )


@service(atomic=False)
def delegations_expire(*, now: datetime | None = None) -> int:
    """Beat: end every delegation past its expiry, a change approval's and an emergency
    window's alike (each kind registered with the engine); the permission is removed and
    the end audited, one approval per transaction."""
    now = now or timezone.now()
    ended = 0
    for model, rules in decisions.kinds():
        for approval_id in decisions.expired_delegations(model, now=now):
            approval = model.objects.filter(pk=approval_id).first()
            if approval is None:
                continue
            try:
                _expire_one(model=model, approval=approval, rules=rules, now=now)
            except Conflict:
                continue  # revoked or renewed since it was listed
            ended += 1
    return ended


@service
def _expire_one(*, model, approval, rules: decisions.Rules, now: datetime) -> None:
    decisions.end_delegation(
        model=model, approval=approval, rules=rules, by=None, now=now, expired=True
    )


def _overdue(now: datetime):
    return Approval.objects.filter(
        Q(phase=Approval.Phase.PRE, change__state=State.IN_REVIEW)
        | Q(phase=Approval.Phase.RETROACTIVE, change__state__in=EXECUTED_STATES),
        status=Approval.Status.PENDING,
        due_at__lt=now,
        escalated_at__isnull=True,
    )


@service(atomic=False)
def approvals_escalate_overdue(*, now: datetime | None = None) -> int:
    """Escalate each overdue approval once, before execution and retroactive alike: to
    its role group and HEAD_OF_SECURITY."""
    now = now or timezone.now()
    escalated = 0
    for approval_id in list(_overdue(now).values_list("pk", flat=True)):
        if _escalate_one(approval_id=approval_id, now=now):
            escalated += 1
    return escalated


@service
def _escalate_one(*, approval_id: int, now: datetime) -> bool:
    User = get_user_model()
    approval = (
        Approval.objects.select_for_update(skip_locked=True)
        .select_related("change", "change__requester")
        .filter(pk=approval_id, escalated_at__isnull=True)
        .first()
    )
    if approval is None:
        return False
    approval.escalated_at = now
    approval.save(update_fields=["escalated_at"])
    change = approval.change
    recipients = list(access.users_who_can_see(change, role=approval.role)) + list(
        User.objects.filter(groups__name=Role.HEAD_OF_SECURITY, is_active=True)
    )
    kind = "retroactive review" if approval.phase == Approval.Phase.RETROACTIVE else "approval"
    notify(
        recipients=[u for u in recipients if u.pk != change.requester_id],
        subject=f"OVERDUE {kind}: {change.public_id} ({approval.get_role_display()})",
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
        details={"approval": approval.pk, "role": approval.role, "phase": approval.phase},
    )
    return True
