"""Who may see and do what with changes and approvals. Read-only checks for views
and services; the services re-check everything inside their transaction."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from changes.models import Approval, ApprovalUserObjectPermission, ChangeRequest, State
from portal.models import TenantGroupObjectPermission, TenantUserObjectPermission
from portal.permissions import visible_tenants
from portal.roles import Role, has_role

CREATOR_ROLES = (Role.REQUESTER, Role.ENGINEERING, Role.OPERATIONS, Role.SECURITY)


def sees_everything(user) -> bool:
    return user.is_superuser or has_role(user, Role.COMPLIANCE)


def changes_visible_to(user) -> QuerySet[ChangeRequest]:
    """Changes of a tenant the user may view, their own, or one they hold an approval on."""
    qs = ChangeRequest.objects.all()
    if sees_everything(user):
        return qs
    tenant_ids = visible_tenants(user).values("pk")
    delegated = ApprovalUserObjectPermission.objects.filter(
        user=user, permission__codename="decide_approval"
    ).values("content_object__change_id")
    decided = Approval.objects.filter(decided_by=user).values("change_id")
    via_tenant = ChangeRequest.tenants.through.objects.filter(tenant_id__in=tenant_ids).values(
        "changerequest_id"
    )
    return qs.filter(
        Q(requester=user) | Q(pk__in=via_tenant) | Q(pk__in=delegated) | Q(pk__in=decided)
    )


def can_view_change(user, change: ChangeRequest) -> bool:
    return changes_visible_to(user).filter(pk=change.pk).exists()


def can_create(user) -> bool:
    return user.is_superuser or has_role(user, *CREATOR_ROLES)


def is_requester(user, change: ChangeRequest) -> bool:
    return change.requester_id == user.pk


def sod_refusal(user, approval: Approval) -> str | None:
    """Why separation of duties forbids this user deciding this approval, if it does."""
    if approval.change.requester_id == user.pk:
        return "You requested this change, so you cannot decide on it under any role."
    other = (
        Approval.objects.filter(change_id=approval.change_id, decided_by=user)
        .exclude(pk=approval.pk)
        .first()
    )
    if other is not None:
        return (
            f"You already decided this change as {other.get_role_display()}; "
            "one person may fill only one role per change."
        )
    return None


def may_decide(user, approval: Approval) -> bool:
    """Holds the decide permission (through the role group or a delegation)."""
    return user.has_perm("changes.decide_approval", approval)


def decision_open(approval: Approval) -> bool:
    change = approval.change
    if approval.phase == Approval.Phase.PRE:
        return change.state == State.IN_REVIEW
    return change.state in (State.COMPLETED, State.FAILED, State.ROLLED_BACK)


def users_who_can_see(change: ChangeRequest, *, role: str) -> QuerySet:
    """Active holders of a role who may see the change (approvers to notify)."""
    User = get_user_model()
    holders = User.objects.filter(groups__name=role, is_active=True)
    if role == Role.COMPLIANCE:
        return holders.exclude(pk=change.requester_id).distinct()
    tenant_ids = list(change.tenants.values_list("pk", flat=True))
    direct = TenantUserObjectPermission.objects.filter(
        content_object_id__in=tenant_ids, permission__codename="view_tenant"
    ).values("user_id")
    via_group = TenantGroupObjectPermission.objects.filter(
        content_object_id__in=tenant_ids, permission__codename="view_tenant"
    ).values("group_id")
    return (
        holders.filter(Q(pk__in=direct) | Q(groups__in=via_group))
        .exclude(pk=change.requester_id)
        .distinct()
    )
