"""The one approval engine: deciding and delegating any approval, a change's or an
emergency window's, with the same checks in the same order.

Whoever may decide is a guardian object permission (the role's group, or a named
delegate for a limited time). Separation of duties, the decision's own rules (a
rejection needs a comment), the stale-form check and whether the approval is open now
differ only in the details each kind of approval supplies through ``Rules``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F
from guardian.shortcuts import assign_perm, remove_perm

from changes import access
from changes.models import ApprovalBase
from portal.audit import audit_record
from portal.errors import Conflict, Invalid, NotAllowed, SeparationOfDuties
from portal.notifications import notify
from portal.roles import user_roles

DELEGATION_DAYS = 7


@dataclass(frozen=True)
class Rules:
    """What one kind of approval adds to the engine."""

    # Lock the approval's subject (the change, the window) before the approval itself,
    # so concurrent decisions on one subject queue instead of deadlocking.
    lock_subject: Callable[[ApprovalBase], Any]
    # Point the locked approval at the locked subject, so the rules read current rows.
    attach: Callable[[ApprovalBase, Any], None]
    sod_refusal: Callable[[Any, ApprovalBase], str | None]
    closed_reason: Callable[[ApprovalBase], str | None]
    delegate_refusal: Callable[[ApprovalBase, Any], str | None]
    audit_prefix: str  # "approval" or "window"


def _lock(model, approval: ApprovalBase, rules: Rules) -> tuple[Any, ApprovalBase]:
    subject = rules.lock_subject(approval)
    locked = model.objects.select_for_update().get(pk=approval.pk)
    rules.attach(locked, subject)
    return subject, locked


def _audit_details(approval: ApprovalBase) -> dict[str, Any]:
    return {"approval": approval.pk, "approval_role": approval.role}


def _bump(approval: ApprovalBase, fields: list[str]) -> None:
    approval.version = F("version") + 1
    approval.save(update_fields=[*fields, "version"])
    approval.version = (
        type(approval).objects.filter(pk=approval.pk).values_list("version", flat=True).get()
    )


def decide(
    *,
    model,
    approval: ApprovalBase,
    rules: Rules,
    by,
    decision: str,
    comment: str,
    version: int | str | None,
    now: datetime,
) -> tuple[Any, ApprovalBase]:
    """Record one decision on a locked approval; returns (subject, approval). The
    caller's service moves the subject on and runs inside its transaction."""
    comment = (comment or "").strip()
    if decision not in (ApprovalBase.Status.APPROVED, ApprovalBase.Status.REJECTED):
        raise Invalid("Choose Approve or Reject.")
    subject, locked = _lock(model, approval, rules)
    audit_obj = subject
    refusal = rules.sod_refusal(by, locked)
    if refusal:
        raise SeparationOfDuties(
            refusal,
            user=by,
            action=f"{rules.audit_prefix}.refused",
            obj=audit_obj,
            role=locked.role,
            details=_audit_details(locked),
        )
    if not access.may_decide(by, locked, now=now):
        raise NotAllowed(
            f"You may not decide the {locked.get_role_display()} approval.",
            user=by,
            action=f"{rules.audit_prefix}.refused",
            obj=audit_obj,
            role=locked.role,
            details=_audit_details(locked),
        )
    # Refusals by duty and permission come first (audited); then the input and state.
    if decision == ApprovalBase.Status.REJECTED and not comment:
        raise Invalid("A rejection needs a comment explaining why.")
    if locked.status != ApprovalBase.Status.PENDING:
        who = locked.decided_by.get_username() if locked.decided_by else "someone"
        when = f" at {locked.decided_at:%Y-%m-%d %H:%M} UTC" if locked.decided_at else ""
        raise Conflict(
            f"This approval was already {locked.get_status_display().lower()} by {who}{when}."
        )
    if version is not None and (not str(version).isdecimal() or int(version) != locked.version):
        raise Conflict("This approval changed since you opened it. Reload and try again.")
    closed = rules.closed_reason(locked)
    if closed:
        raise Conflict(closed)
    record(approval=locked, by=by, decision=decision, comment=comment, now=now)
    audit_record(
        action=f"{rules.audit_prefix}.{decision.lower()}",
        user=by,
        role=locked.role,
        acting_for=locked.delegated_by if locked.delegated_to_id == by.pk else None,
        obj=audit_obj,
        details={**_audit_details(locked), "comment": comment[:2000]},
    )
    return subject, locked


def record(*, approval: ApprovalBase, by, decision: str, comment: str, now: datetime) -> None:
    """Write a decision on an already locked and checked approval."""
    approval.status = decision
    approval.comments = comment
    approval.decided_by = by
    approval.decided_at = now
    _bump(approval, ["status", "comments", "decided_by", "decided_at"])


def delegate(
    *,
    model,
    approval: ApprovalBase,
    rules: Rules,
    by,
    to_user,
    now: datetime,
    days: int = DELEGATION_DAYS,
) -> ApprovalBase:
    """Let a named user decide this one approval for ``days`` (the same permission,
    audited). A new delegation replaces an earlier one."""
    subject, locked = _lock(model, approval, rules)
    prefix = rules.audit_prefix
    if (locked.role not in user_roles(by) and not by.is_superuser) or not access.may_decide(
        by, locked, now=now
    ):
        raise NotAllowed(
            "Only a holder of the role who may decide this approval can delegate it.",
            user=by,
            action=f"{prefix}.delegate_refused",
            obj=subject,
            role=locked.role,
            details=_audit_details(locked),
        )
    own = rules.sod_refusal(by, locked)
    if own:
        raise SeparationOfDuties(
            own, user=by, action=f"{prefix}.delegate_refused", obj=subject, role=locked.role
        )
    if locked.status != ApprovalBase.Status.PENDING:
        raise Conflict("This approval is already decided.")
    if not 1 <= days <= 30:
        raise Invalid("A delegation lasts 1 to 30 days.")
    refusal = rules.delegate_refusal(locked, to_user)
    if refusal:
        raise SeparationOfDuties(
            refusal,
            user=by,
            action=f"{prefix}.delegate_refused",
            obj=subject,
            role=locked.role,
            details={**_audit_details(locked), "to": to_user.get_username()},
        )
    if locked.delegated_to_id and locked.delegated_to_id != to_user.pk:
        remove_perm(model.permission, locked.delegated_to, locked)
    assign_perm(model.permission, to_user, locked)
    locked.delegated_to = to_user
    locked.delegated_by = by
    locked.delegated_at = now
    locked.delegation_expires_at = now + timedelta(days=days)
    _bump(locked, ["delegated_to", "delegated_by", "delegated_at", "delegation_expires_at"])
    audit_record(
        action=f"{prefix}.delegated",
        user=by,
        role=locked.role,
        obj=subject,
        details={
            **_audit_details(locked),
            "to": to_user.get_username(),
            "expires_at": locked.delegation_expires_at.isoformat(),
        },
    )
    notify(
        recipients=[to_user],
        subject=f"Approval delegated to you: {subject} ({locked.get_role_display()})",
        body=(
            f"Delegated by {by.get_username()} until "
            f"{locked.delegation_expires_at:%Y-%m-%d %H:%M} UTC."
        ),
        url=locked.get_absolute_url(),
        dedup_key=f"{prefix}:{locked.pk}:delegated:{to_user.pk}:{locked.version}",
    )
    return locked


def end_delegation(
    *, model, approval: ApprovalBase, rules: Rules, by, now: datetime, expired: bool = False
) -> ApprovalBase:
    """Revoke (by a person) or expire (by beat, ``by=None``) the active delegation."""
    subject, locked = _lock(model, approval, rules)
    prefix = rules.audit_prefix
    if not locked.delegated_to_id:
        raise Conflict("No delegation is active.")
    if expired and locked.delegation_expires_at > now:
        raise Conflict("The delegation was renewed.")  # since beat listed it
    if by is not None:
        verdict = access.revoke_verdict(by, locked, now=now)
        if not verdict:
            raise NotAllowed(
                verdict.reason,
                user=by,
                action=f"{prefix}.revoke_refused",
                obj=subject,
                role=locked.role,
            )
    delegate_user = locked.delegated_to
    remove_perm(model.permission, delegate_user, locked)
    locked.delegated_to = None
    locked.delegation_expires_at = None
    _bump(locked, ["delegated_to", "delegation_expires_at"])
    audit_record(
        action=f"{prefix}.delegation_{'expired' if expired else 'revoked'}",
        user=by,
        role=locked.role,
        obj=subject,
        details={**_audit_details(locked), "delegate": delegate_user.get_username()},
    )
    return locked


# Every kind of approval that may be delegated, with its rules: beat's one expiry loop
# (changes.services.delegations_expire) walks them all, so a kind registered by a
# higher layer (maintenance's emergency windows) expires without changes knowing it.
_kinds: dict[type, Rules] = {}


def register_kind(model: type, rules: Rules) -> None:
    _kinds[model] = rules


def kinds() -> list[tuple[type, Rules]]:
    return list(_kinds.items())


def expired_delegations(model, *, now: datetime) -> list[int]:
    return list(
        model.objects.filter(
            delegated_to__isnull=False, delegation_expires_at__lte=now
        ).values_list("pk", flat=True)
    )
