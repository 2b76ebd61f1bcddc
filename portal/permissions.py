"""Access helpers shared by every app's views."""

from __future__ import annotations

from functools import cache, wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from portal.models import Tenant, TenantGroupObjectPermission, TenantUserObjectPermission
from portal.roles import Role, has_role


def visible_tenants(user) -> QuerySet[Tenant]:
    """Tenants the user may view: a guardian permission, directly or through a group.

    COMPLIANCE sees every tenant (audit duty); a superuser too. The rule is one SQL
    subquery of tenant ids (``_viewable_tenant_ids``), not guardian's
    ``get_objects_for_user`` nor the same rule as ORM joins: either took 3–5 ms of Python
    to build on every page that lists or shows changes, the query itself 0.1 ms.
    """
    if user.is_superuser or has_role(user, Role.COMPLIANCE):
        return Tenant.objects.all()
    if not user.is_authenticated:
        return Tenant.objects.none()
    return Tenant.objects.filter(pk__in=_viewable_tenant_ids(user))


def _viewable_tenant_ids(user) -> RawSQL:
    """The ids of the tenants on which ``user`` holds ``view_tenant``, their own or a
    group's: guardian's object permission rows, read as guardian reads them."""
    view = (ContentType.objects.get_for_model(Tenant).pk, "view_tenant")
    # Every value is a parameter; the SQL holds only the models' own names.
    return RawSQL(_viewable_tenant_ids_sql(), (user.pk, *view, user.pk, *view))  # noqa: S611


@cache
def _viewable_tenant_ids_sql() -> str:
    # Names from the models, quoted by the database's own rule (PostgreSQL or SQLite).
    def names(model, *fields: str) -> list[str]:
        quote = connection.ops.quote_name
        return [quote(model._meta.db_table)] + [
            quote(model._meta.get_field(field).column) for field in fields
        ]

    perms, perm_id, perm_type, codename = names(Permission, "id", "content_type", "codename")
    user_perms, u_tenant, u_user, u_perm = names(
        TenantUserObjectPermission, "content_object", "user", "permission"
    )
    group_perms, g_tenant, g_group, g_perm = names(
        TenantGroupObjectPermission, "content_object", "group", "permission"
    )
    members, m_user, m_group = names(get_user_model().groups.through, "user", "group")
    view = f"SELECT {perm_id} FROM {perms} WHERE {perm_type} = %s AND {codename} = %s"
    return (
        f"SELECT {u_tenant} FROM {user_perms} WHERE {u_user} = %s AND {u_perm} IN ({view}) "
        f"UNION SELECT g.{g_tenant} FROM {group_perms} g "
        f"JOIN {members} m ON m.{m_group} = g.{g_group} "
        f"WHERE m.{m_user} = %s AND g.{g_perm} IN ({view})"
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
