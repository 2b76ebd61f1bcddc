"""Who may use the compliance pages: one rule per page, used by views and panels."""

from __future__ import annotations

from portal.roles import Role, has_role


def is_auditor(user) -> bool:
    """The audit trail, its exports and chain verification: COMPLIANCE (and superusers)."""
    return user.is_superuser or has_role(user, Role.COMPLIANCE)


def sees_kpis(user) -> bool:
    """KPIs are computed over the changes the viewer may see; the executives read them too."""
    return user.is_superuser or has_role(user, Role.COMPLIANCE, Role.CTO, Role.HEAD_OF_SECURITY)
