"""Who may see and do what with changes and approvals: written once, used by the pages
(which buttons to show) and by the services (what to allow), so the two cannot drift.

``change_actions`` answers, for one user and one change, every action the change pages
offer; ``approval_actions`` the same for an approval. A refused action says why and
whether it is a matter of permission (403) or of the change's state (409).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.lookups import IsNull
from django.utils import timezone

from changes.models import (
    CANCELLABLE_STATES,
    EXECUTED_STATES,
    PROCEDURE_EDIT_STATES,
    Approval,
    ApprovalBase,
    Category,
    ChangeRequest,
    State,
)
from portal.errors import Conflict, Invalid, NotAllowed, SeparationOfDuties
from portal.models import Tenant, TenantGroupObjectPermission, TenantUserObjectPermission
from portal.permissions import visible_tenant_list, visible_tenants
from portal.roles import Role, has_role, user_roles

CREATOR_ROLES = (Role.REQUESTER, Role.ENGINEERING, Role.OPERATIONS, Role.SECURITY)
OPERATOR_ROLES = (Role.OPERATIONS,)
# Who answers a refused retroactive ratification with a corrective action.
CORRECTIVE_ROLES = (Role.HEAD_OF_SECURITY, Role.COMPLIANCE)


# --- who the user is ----------------------------------------------------------------


def sees_everything(user) -> bool:
    return user.is_superuser or has_role(user, Role.COMPLIANCE)


def can_create(user) -> bool:
    return user.is_superuser or has_role(user, *CREATOR_ROLES)


def is_operator(user) -> bool:
    """Operators schedule, start and carry out changes."""
    return user is not None and (user.is_superuser or has_role(user, *OPERATOR_ROLES))


def is_requester(user, change: ChangeRequest) -> bool:
    return change.requester_id == user.pk


# --- what the user may see --------------------------------------------------------


def change_visibility(user, *, path: str = "") -> Q | None:
    """The condition "this user may see the change" over a query whose change is at
    ``path`` ("" on ChangeRequest itself, "change__" on approvals and slots), or None
    when the user sees every change. Semi-joins (EXISTS) on the change's id, so a list
    can walk an index in its own order and stop at its page."""
    if sees_everything(user):
        return None
    change_id = OuterRef(f"{path[:-2]}_id" if path else "pk")
    # The user's few tenant ids as values, not a subquery: with guardian's subquery in
    # the EXISTS, PostgreSQL hashes every tenant link of every change (165k rows at
    # 100k changes) before the first row, instead of probing the link index per row.
    tenant_ids = [tenant.pk for tenant in visible_tenant_list(user)]
    # The test of the outer id alone ("IS NOT NULL", always true of a key) keeps
    # PostgreSQL from turning the EXISTS into a hashed subplan: it would hash every link
    # of the user's tenants (56k rows, 25 ms at 100,000 changes) before a list's first
    # row, planning for the whole table rather than the page's LIMIT; probed per row, a
    # page costs 0.4 ms.
    via_tenant = Exists(
        ChangeRequest.tenants.through.objects.filter(
            IsNull(change_id, False), changerequest_id=change_id, tenant_id__in=tenant_ids
        )
    )
    delegated = Exists(
        Approval.objects.filter(
            change_id=change_id, delegated_to=user, delegation_expires_at__gt=timezone.now()
        )
    )
    decided = Exists(Approval.objects.filter(change_id=change_id, decided_by=user))
    own = Q(**{f"{path}requester": user})
    return (own | via_tenant if tenant_ids else own) | delegated | decided


def changes_visible_to(user) -> QuerySet[ChangeRequest]:
    """Changes of a tenant the user may view, their own, or one they hold an approval on."""
    condition = change_visibility(user)
    qs = ChangeRequest.objects.all()
    return qs if condition is None else qs.filter(condition)


def can_view_change(user, change: ChangeRequest) -> bool:
    return changes_visible_to(user).filter(pk=change.pk).exists()


def sees_all_tenants_of(user, change: ChangeRequest) -> bool:
    """Whether the user may view every tenant the change names (a delegate must)."""
    if sees_everything(user):
        return True
    wanted = set(change.tenants.values_list("pk", flat=True))
    allowed = set(visible_tenants(user).filter(pk__in=wanted).values_list("pk", flat=True))
    return wanted <= allowed


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


def filing_tenants(user, named: QuerySet[Tenant]) -> list[Tenant]:
    """The tenants a change drafted for an object (a database target, a component) is
    filed under: the object's tenants the user may see, or, for shared infrastructure
    naming none, the first tenant the user may see (to be corrected on the draft)."""
    visible = visible_tenants(user)
    mine = list(named.filter(pk__in=visible.values("pk")).order_by("name"))
    if mine:
        return mine
    first = visible.order_by("name").first()
    if first is None:
        raise Invalid("You may see no tenant, so a change naming one cannot be filed.")
    return [first]


def check_tenants_visible(by, tenants: list[Tenant]) -> bool:
    allowed = set(visible_tenants(by).values_list("pk", flat=True))
    return all(t.pk in allowed for t in tenants)


# --- separation of duties ------------------------------------------------------------


def executor_ids(change: ChangeRequest) -> set[int]:
    """Whoever started, implemented or verified the change."""
    return {
        pk for pk in (change.started_by_id, change.implemented_by_id, change.verified_by_id) if pk
    }


def approver_ids(change: ChangeRequest) -> set[int]:
    """Whoever decided one of the change's approvals before it ran."""
    return {
        a.decided_by_id
        for a in change.approvals.all()
        if a.decided_by_id and a.phase == Approval.Phase.PRE
    }


def sod_refusal(user, approval: Approval) -> str | None:
    """Why separation of duties forbids this user deciding this approval, if it does."""
    change = approval.change
    if change.requester_id == user.pk:
        return "You requested this change, so you cannot decide on it under any role."
    if user.pk in executor_ids(change):
        return (
            "You carried out this change (started, implemented or verified it), so you "
            "cannot decide any of its approvals."
        )
    for other in change.approvals.all():
        if other.pk != approval.pk and other.decided_by_id == user.pk:
            return (
                f"You already decided this change as {other.get_role_display()}; "
                "one person may fill only one role per change."
            )
    return None


def may_decide(user, approval: ApprovalBase, *, now=None) -> bool:
    """Holds the decide permission: through the role's group, or a delegation that is
    active (not revoked, not expired)."""
    if approval.role in user_roles(user) and user.has_perm(approval.permission, approval):
        return True
    if approval.delegated_to_id == user.pk and approval.delegation_active(now):
        return user.has_perm(approval.permission, approval)
    return user.is_superuser


def decision_open(approval: Approval) -> bool:
    change = approval.change
    if approval.phase == Approval.Phase.PRE:
        return change.state == State.IN_REVIEW
    return change.state in EXECUTED_STATES


def delegate_refusal(approval: Approval, to_user) -> str | None:
    """Why ``to_user`` cannot be the delegate of this approval, if they cannot: they must
    be active, see every tenant of the change, and not be excluded by separation of
    duties (the requester, a decider of another role, whoever carries the change out)."""
    change = approval.change
    if not to_user.is_active:
        return "That user is not active."
    if to_user.pk == change.requester_id:
        return "An approval cannot be delegated to the change's requester."
    if to_user.pk in executor_ids(change):
        return "An approval cannot be delegated to whoever carries the change out."
    for other in change.approvals.all():
        if other.pk != approval.pk and other.decided_by_id == to_user.pk:
            return (
                f"{to_user.get_username()} already decided this change as "
                f"{other.get_role_display()}; one person fills one role per change."
            )
    if not sees_all_tenants_of(to_user, change):
        return (
            f"{to_user.get_username()} may not see every tenant of {change.public_id}, "
            "so they cannot decide on it."
        )
    return None


# --- what the user may do now ----------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""
    # 403 when it is the user's permission, 409 when it is the change's state.
    status: int = 403

    def __bool__(self) -> bool:
        return self.allowed


YES = Verdict(True)


def _no(reason: str) -> Verdict:
    return Verdict(False, reason, 403)


def _not_now(reason: str) -> Verdict:
    return Verdict(False, reason, 409)


def _executor_verdict(user, change: ChangeRequest, state: str, what: str) -> Verdict:
    if not is_operator(user):
        return _no("Only operators carry out changes.")
    if user.pk in approver_ids(change):
        return _no("You approved this change; someone who was not an approver must carry it out.")
    if change.state != state:
        return _not_now(f"{change.public_id} is {change.get_state_display()}; {what}")
    return YES


def change_actions(user, change: ChangeRequest) -> dict[str, Verdict]:
    """Every action of the change pages, for this user, now. Reads the change's
    approvals (prefetch them on pages) and no other rows."""
    mine = is_requester(user, change)
    state = change.state
    label = change.get_state_display()
    actions: dict[str, Verdict] = {}

    if not mine:
        actions["edit"] = actions["submit"] = _no("Only the requester may do this.")
    elif state != State.DRAFT:
        actions["edit"] = _not_now(f"{change.public_id} is {label}; only drafts can be edited.")
        actions["submit"] = _not_now(f"{change.public_id} was already submitted.")
    else:
        actions["edit"] = actions["submit"] = YES

    if not mine:
        actions["cancel"] = _no("Only the requester may cancel this change.")
    elif state not in CANCELLABLE_STATES:
        actions["cancel"] = _not_now(
            f"{change.public_id} is {label}; a change can only be cancelled before its "
            "execution starts."
        )
    else:
        actions["cancel"] = YES

    if not can_create(user):
        actions["copy"] = _no("Your roles do not allow filing change requests.")
    elif state not in (State.REJECTED, State.CANCELLED):
        actions["copy"] = _not_now("Only rejected or cancelled changes can be copied.")
    else:
        actions["copy"] = YES

    if not (mine or is_operator(user)):
        actions["edit_procedures"] = _no(
            "Only the requester or an operator may change the procedures."
        )
    elif state not in PROCEDURE_EDIT_STATES:
        actions["edit_procedures"] = _not_now(
            f"{change.public_id} is {label}; its procedures can no longer change."
        )
    else:
        actions["edit_procedures"] = YES

    for action, wanted, verb in (
        ("schedule", State.APPROVED, "only approved changes can be scheduled."),
        ("unschedule", State.SCHEDULED, "it is not scheduled."),
    ):
        if not is_operator(user):
            actions[action] = _no("Only operators schedule changes.")
        elif state != wanted:
            actions[action] = _not_now(f"{change.public_id} is {label}; {verb}")
        else:
            actions[action] = YES

    actions["start"] = _executor_verdict(user, change, State.SCHEDULED, "it is not scheduled.")
    implement = _executor_verdict(
        user, change, State.IN_PROGRESS, "only a change in progress is implemented."
    )
    if implement and change.procedure_count:
        implement = _not_now("Its procedures implement this change; it is not done by hand.")
    actions["implement"] = implement
    actions["verify"] = _executor_verdict(
        user, change, State.VERIFYING, "only a change being verified can be verified."
    )

    if not (mine or is_operator(user)):
        actions["review"] = _no("The requester or an operator writes the review.")
    elif state not in EXECUTED_STATES:
        actions["review"] = _not_now("A review is written after the change has run.")
    elif change.review_done():
        actions["review"] = _not_now("This change already has its review.")
    else:
        actions["review"] = YES

    if not (mine or is_operator(user)):
        actions["close"] = _no("The requester or an operator closes the change.")
    elif state not in EXECUTED_STATES:
        actions["close"] = _not_now(f"{change.public_id} is {label}.")
    elif not change.closable():
        actions["close"] = _not_now(
            f"{change.public_id} cannot close yet: {closure_missing(change)}."
        )
    else:
        actions["close"] = YES

    if not (user.is_superuser or has_role(user, *CORRECTIVE_ROLES)):
        actions["correct"] = _no("Only the Head of Security or Compliance records this.")
    elif not change.retroactive_refused():
        actions["correct"] = _not_now("No retroactive ratification of this change was refused.")
    elif change.corrective_action_recorded():
        actions["correct"] = _not_now("A corrective action is already recorded.")
    else:
        actions["correct"] = YES
    return actions


def closure_missing(change: ChangeRequest) -> str:
    missing = []
    if not change.review_done():
        missing.append("its post-implementation review")
    if change.category == Category.URGENT:
        if change.retroactive_pending():
            missing.append("its retroactive approvals")
        elif change.retroactive_refused() and not change.corrective_action_recorded():
            missing.append(
                "a corrective action for its refused ratification (a linked change or an "
                "incident note by the Head of Security or Compliance)"
            )
    return "it needs " + " and ".join(missing) if missing else "nothing is missing"


def require(user, change: ChangeRequest, action: str, *, audit_action: str = "") -> None:
    """Raise the refusal ``change_actions`` gives for this action, if any: NotAllowed
    (audited) for a permission, Conflict for the change's state."""
    verdict = change_actions(user, change)[action]
    if verdict:
        return
    if verdict.status == 409:
        raise Conflict(verdict.reason)
    exc = SeparationOfDuties if "approved this change" in verdict.reason else NotAllowed
    raise exc(
        verdict.reason,
        user=user,
        action=audit_action or f"change.{action}_refused",
        obj=change,
    )


def approval_actions(user, approval: Approval, *, now=None) -> dict[str, Verdict]:
    """Decide and delegate, for this user and approval, now."""
    now = now or timezone.now()
    actions: dict[str, Verdict] = {}
    refusal = sod_refusal(user, approval)
    allowed = may_decide(user, approval, now=now)
    pending = approval.status == Approval.Status.PENDING
    if refusal:
        actions["decide"] = actions["delegate"] = _no(refusal)
    elif not allowed:
        actions["decide"] = actions["delegate"] = _no(
            f"You may not decide the {approval.get_role_display()} approval."
        )
    elif not pending:
        actions["decide"] = actions["delegate"] = _not_now("This approval is already decided.")
    elif not decision_open(approval):
        change = approval.change
        actions["decide"] = actions["delegate"] = _not_now(
            f"{change.public_id} is {change.get_state_display()}; this approval cannot be "
            "decided now."
        )
    else:
        actions["decide"] = actions["delegate"] = YES
    if approval.delegated_to_id == user.pk and approval.role not in user_roles(user):
        # A delegate decides; handing the delegation on is for the role's holders.
        actions["delegate"] = _no("A delegate cannot delegate further.")
    actions["revoke"] = revoke_verdict(user, approval, now=now)
    return actions


def revoke_verdict(user, approval: ApprovalBase, *, now=None) -> Verdict:
    """Who may end an active delegation: the delegator, or a holder of the role who may
    decide the approval."""
    if not approval.delegation_active(now):
        return _not_now("No delegation is active.")
    if approval.delegated_by_id == user.pk or (
        approval.role in user_roles(user) and may_decide(user, approval, now=now)
    ):
        return YES
    return _no("Only the delegator or a holder of the role may revoke it.")
