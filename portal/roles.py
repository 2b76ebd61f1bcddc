"""Role groups. Users may hold several; each is a Django group created by migration."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    REQUESTER = "REQUESTER", "Requester"
    ENGINEERING = "ENGINEERING", "Engineering"
    OPERATIONS = "OPERATIONS", "Operations"
    SECURITY = "SECURITY", "Security"
    COMPLIANCE = "COMPLIANCE", "Compliance"
    CTO = "CTO", "CTO"
    HEAD_OF_SECURITY = "HEAD_OF_SECURITY", "Head of Security"


APPROVER_ROLES = frozenset(
    {
        Role.SECURITY,
        Role.ENGINEERING,
        Role.OPERATIONS,
        Role.COMPLIANCE,
        Role.CTO,
        Role.HEAD_OF_SECURITY,
    }
)


def user_roles(user) -> frozenset[str]:
    """The role names a user holds, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_portal_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(name for name in names if name in Role.values)
        user._portal_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
