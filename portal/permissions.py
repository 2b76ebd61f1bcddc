"""Access helpers shared by every app's views."""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from portal.models import Tenant
from portal.roles import Role, has_role


def visible_tenants(user) -> QuerySet[Tenant]:
    """Tenants the user may view: a guardian permission, directly or through a group.

    COMPLIANCE sees every tenant (audit duty); a superuser too.
    """
    if user.is_superuser or has_role(user, Role.COMPLIANCE):
        return Tenant.objects.all()
    return get_objects_for_user(user, "portal.view_tenant", klass=Tenant, accept_global_perms=False)


def role_required(*roles: str):
    """403 unless the user holds one of the roles (superusers pass)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not (request.user.is_superuser or has_role(request.user, *roles)):
                raise PermissionDenied("Your roles do not allow this page.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
