"""Who may see and manage database targets.

Database operations are for OPERATIONS and ENGINEERING (and superusers). A target that
names tenants is shown only to those who may view one of them: its activity view shows
live statement text, which may carry that tenant's data. A target naming no tenant is
shared infrastructure, visible to every database operator.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from dbops.models import DatabaseTarget
from portal.permissions import visible_tenants
from portal.roles import Role, has_role

DBOPS_ROLES = (Role.OPERATIONS, Role.ENGINEERING)


def is_database_operator(user) -> bool:
    return user.is_superuser or has_role(user, *DBOPS_ROLES)


def can_manage_targets(user) -> bool:
    """Adds, edits and removes targets: portal admins (the model permissions)."""
    return user.has_perm("dbops.add_databasetarget") and user.has_perm(
        "dbops.change_databasetarget"
    )


def targets_visible_to(user) -> QuerySet[DatabaseTarget]:
    qs = DatabaseTarget.objects.all()
    if not is_database_operator(user):
        return qs.none()
    if user.is_superuser:
        return qs
    tenant_ids = visible_tenants(user).values("pk")
    with_visible_tenant = DatabaseTarget.tenants.through.objects.filter(
        tenant_id__in=tenant_ids
    ).values("databasetarget_id")
    with_any_tenant = DatabaseTarget.tenants.through.objects.values("databasetarget_id")
    return qs.filter(Q(pk__in=with_visible_tenant) | ~Q(pk__in=with_any_tenant))
