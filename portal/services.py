"""Writes of the core app. Each is atomic and audited in the same transaction."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from portal.audit import audit_record
from portal.models import AuditEvent, Tenant
from portal.roles import Role


def session_expire(*, request, reason: str) -> None:
    with transaction.atomic():
        audit_record(
            action="auth.session_expired",
            user=request.user,
            obj=request.user,
            details={"reason": reason},
        )


def worker_ping_record(*, token: str) -> int:
    """Proves a worker ran a task end to end: an audit row the caller can look for."""
    with transaction.atomic(durable=True):
        event = audit_record(
            action="worker.ping",
            object_type="worker",
            object_id=token[:64],
            details={"token": token[:64]},
        )
    return event.sequence


def tenant_grant_view(*, tenant: Tenant, user=None, group: Group | None = None, by=None) -> None:
    with transaction.atomic():
        target = user if user is not None else group
        assign_perm("portal.view_tenant", target, tenant)
        audit_record(
            action="tenant.grant_view",
            user=by,
            obj=tenant,
            details={
                "to_user": getattr(user, "username", None),
                "to_group": getattr(group, "name", None),
            },
        )


def tenant_revoke_view(*, tenant: Tenant, user=None, group: Group | None = None, by=None) -> None:
    with transaction.atomic():
        target = user if user is not None else group
        remove_perm("portal.view_tenant", target, tenant)
        audit_record(
            action="tenant.revoke_view",
            user=by,
            obj=tenant,
            outcome=AuditEvent.Outcome.SUCCESS,
            details={
                "to_user": getattr(user, "username", None),
                "to_group": getattr(group, "name", None),
            },
        )


def user_set_roles(*, user, roles: list[str], by=None) -> None:
    unknown = set(roles) - set(Role.values)
    if unknown:
        raise ValueError(f"Unknown roles: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        groups = list(Group.objects.filter(name__in=roles))
        user.groups.set(groups)
        audit_record(action="user.set_roles", user=by, obj=user, details={"roles": sorted(roles)})


User = get_user_model()


def preference_set_timezone(*, user, tzname: str) -> None:
    import zoneinfo

    from portal.models import UserPreference

    if tzname not in zoneinfo.available_timezones():
        raise ValueError(f"Unknown time zone {tzname!r}.")
    with transaction.atomic(durable=True):
        pref, _ = UserPreference.objects.select_for_update().get_or_create(user=user)
        old = pref.timezone
        pref.timezone = tzname
        pref.save(update_fields=["timezone"])
        audit_record(
            action="user.timezone_set", user=user, obj=user, details={"from": old, "to": tzname}
        )
