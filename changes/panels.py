"""What the changes app shows on portal pages: navigation and dashboard panels."""

from __future__ import annotations

from changes import access, selectors
from portal import registry
from portal.roles import APPROVER_ROLES, Role, has_role


def _approver(user) -> bool:
    return user.is_superuser or has_role(user, *APPROVER_ROLES)


def _compliance(user) -> bool:
    return user.is_superuser or has_role(user, Role.COMPLIANCE)


def _my_changes(request):
    return {"my_changes": selectors.my_open_changes(request.user)}


def _my_approvals(request):
    # The queue is ordered by due time, so overdue decisions come first.
    return {"my_approvals": selectors.approvals_waiting(request.user)}


def _ratifications(request):
    return {
        "retroactive_due": selectors.retroactive_reviews_due(),
        "refused": selectors.refused_ratifications(),
    }


def register() -> None:
    registry.register_nav("Changes", "changes:list", allowed=lambda user: True, order=10)
    registry.register_nav("Approvals", "changes:approvals", allowed=_approver, order=20)
    registry.register_nav(
        "Standard changes",
        "changes:templates",
        allowed=lambda user: access.can_create(user) or _approver(user),
        order=15,
    )
    registry.register_dashboard_panel(
        "approvals", "changes/_dash_approvals.html", _my_approvals, order=10, allowed=_approver
    )
    registry.register_dashboard_panel(
        "ratifications",
        "changes/_dash_ratifications.html",
        _ratifications,
        order=15,
        allowed=_compliance,
    )
    registry.register_dashboard_panel(
        "my_changes",
        "changes/_dash_my_changes.html",
        _my_changes,
        order=30,
        allowed=access.can_create,
    )
