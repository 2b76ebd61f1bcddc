"""Approval policy: which roles must decide a change, and the rule that says so."""

from __future__ import annotations

from dataclasses import dataclass

from changes.models import ApprovalRule, ChangeRequest


@dataclass(frozen=True)
class Requirement:
    role: str
    phase: str
    due_hours: int | None
    rule: ApprovalRule


def _applies(rule: ApprovalRule, *, change_type: str, tenant_count: int, blackout: bool) -> bool:
    if rule.change_type and rule.change_type != change_type:
        return False
    if rule.condition == ApprovalRule.Condition.MULTI_TENANT:
        return tenant_count > 1
    if rule.condition == ApprovalRule.Condition.BLACKOUT_EXCEPTION:
        return blackout
    return True


def required_for(
    *, category: str, change_type: str, tenant_count: int, blackout: bool = False
) -> list[Requirement]:
    """One requirement per role (first matching rule wins), in the policy's order. A
    change and a standard change template are both routed by it."""
    rules = ApprovalRule.objects.filter(active=True, category=category).order_by("phase", "pk")
    by_role: dict[str, Requirement] = {}
    for rule in rules:
        if rule.role in by_role or not _applies(
            rule, change_type=change_type, tenant_count=tenant_count, blackout=blackout
        ):
            continue
        by_role[rule.role] = Requirement(
            role=rule.role, phase=rule.phase, due_hours=rule.due_hours, rule=rule
        )
    return list(by_role.values())


def required_approvals(change: ChangeRequest) -> list[Requirement]:
    return required_for(
        category=change.category,
        change_type=change.type,
        tenant_count=change.tenants.count(),
        blackout=change.blackout_exception,
    )
