"""Access helpers shared by every app's views."""

from __future__ import annotations

from functools import wraps

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from portal.models import Tenant, TenantGroupObjectPermission, TenantUserObjectPermission
from portal.roles import Role, has_role


def visible_tenants(user) -> QuerySet[Tenant]:
    """Tenants the user may view: a guardian permission, directly or through a group.

    COMPLIANCE sees every tenant (audit duty); a superuser too. The rule is written out
    rather than asked of guardian's ``get_objects_for_user`` (the same query, which took
    three milliseconds of Python to build on every page).
    """
    if user.is_superuser or has_role(user, Role.COMPLIANCE):
        return Tenant.objects.all()
    if not user.is_authenticated:
        return Tenant.objects.none()
    view = Q(
        permission__content_type=ContentType.objects.get_for_model(Tenant),
        permission__codename="view_tenant",
    )
    direct = TenantUserObjectPermission.objects.filter(view, user=user)
    via_group = TenantGroupObjectPermission.objects.filter(view, group__user=user)
    return Tenant.objects.filter(
        Q(pk__in=direct.values("content_object_id"))
        | Q(pk__in=via_group.values("content_object_id"))
    )


def visible_tenant_list(user) -> tuple[Tenant, ...]:
    """``visible_tenants(user)`` by name, read once per request and kept on the user
    object, as its roles are (``portal.roles.user_roles``): a page asks twice, for its
    filter's choices and for the visibility rule of its rows, and the query costs a few
    milliseconds to build and run each time."""
    cached = getattr(user, "_portal_tenants", None)
    if cached is None:
        cached = tuple(visible_tenants(user).order_by("name", "pk"))
        user._portal_tenants = cached
    return cached


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
