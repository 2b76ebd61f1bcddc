"""What the dbops services share: the role a user acts in, target visibility."""

from __future__ import annotations

from dbops import access
from dbops.models import DatabaseTarget
from portal.errors import NotAllowed
from portal.roles import Role, has_role


def role_used(user) -> str:
    for role in (Role.OPERATIONS, Role.ENGINEERING):
        if has_role(user, role):
            return role
    return ""


def check_visible(by, target: DatabaseTarget, *, action: str) -> None:
    """The same rule as the target pages: a target the user may not see is refused."""
    if not access.targets_visible_to(by).filter(pk=target.pk).exists():
        raise NotAllowed(
            "You may not use this database target.",
            user=by,
            action=action,
            obj=target,
        )


def require_operator(by, *, action: str, obj=None) -> None:
    if not access.is_database_operator(by):
        raise NotAllowed(
            "Your roles do not allow database operations.", user=by, action=action, obj=obj
        )
