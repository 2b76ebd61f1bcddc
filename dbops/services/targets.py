"""Database targets: registered, edited and removed by portal administrators; checked
("Test connection") by database operators. Reads from a target happen before the
writing transaction opens, so no portal row stays locked while a server is slow."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from django.core.exceptions import ValidationError
from django.utils import timezone

from dbops import access, stats
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget
from dbops.services.common import check_visible, require_operator, role_used
from portal.audit import audit_record
from portal.errors import Invalid, NotAllowed
from portal.models import AuditEvent, Component, Tenant
from portal.transactions import service

TARGET_FIELDS = (
    "name",
    "host",
    "port",
    "database",
    "user",
    "sslmode",
    "disk_capacity_bytes",
    "connections_threshold_percent",
    "is_active",
    "memory_bytes",
    "cpu_count",
    "storage_type",
    "expected_concurrent_users",
    "restartable",
    "restart_command",
)


def _validate(target: DatabaseTarget) -> None:
    try:
        target.full_clean(exclude=["component"])
    except ValidationError as exc:
        raise Invalid("; ".join(exc.messages)) from None


def _target_details(target: DatabaseTarget) -> dict[str, Any]:
    """What the audit trail says about a target: never the password, only whether one
    is stored."""
    return {
        "name": target.name,
        "host": target.host,
        "port": target.port,
        "database": target.database,
        "user": target.user,
        "sslmode": target.sslmode,
        "password_stored": target.has_password,
        "component": target.component.name,
    }


# --- targets ------------------------------------------------------------------------------


def _component_for(name: str, component: Component | None) -> Component:
    if component is not None:
        if component.kind != Component.Kind.DATABASE:
            raise Invalid(f"“{component.name}” is not a database component.")
        if DatabaseTarget.objects.filter(component=component).exists():
            raise Invalid(f"“{component.name}” already belongs to another database target.")
        return component
    component_name = f"{name} (PostgreSQL)"
    existing = Component.objects.filter(name=component_name).first()
    if existing is None:
        return Component.objects.create(
            name=component_name,
            kind=Component.Kind.DATABASE,
            description=f"PostgreSQL database registered as target “{name}”.",
        )
    if (
        existing.kind == Component.Kind.DATABASE
        and not DatabaseTarget.objects.filter(component=existing).exists()
    ):
        return existing
    raise Invalid(
        f"A component named “{component_name}” already exists; choose it explicitly or "
        "give the target another name."
    )


@service
def database_target_create(
    *,
    by,
    data: dict[str, Any],
    password: str,
    tenants: Iterable[Tenant],
    component: Component | None = None,
) -> DatabaseTarget:
    if not access.can_manage_targets(by):
        raise NotAllowed(
            "Only portal administrators may register database targets.",
            user=by,
            action="dbops.target.create_refused",
        )
    target = DatabaseTarget(**{k: data[k] for k in TARGET_FIELDS if k in data})
    _validate(target)
    target.component = _component_for(target.name, component)
    target.set_password(password)
    target.save()
    target.tenants.set(tenants)
    audit_record(
        action="dbops.target.created",
        user=by,
        obj=target,
        details={
            **_target_details(target),
            "tenants": sorted(t.slug for t in target.tenants.all()),
        },
    )
    return target


@service
def database_target_update(
    *,
    target: DatabaseTarget,
    by,
    data: dict[str, Any],
    password: str | None,
    tenants: Iterable[Tenant],
    clear_password: bool = False,
) -> DatabaseTarget:
    """``password`` None keeps the stored one (the form never shows it back)."""
    if not access.can_manage_targets(by):
        raise NotAllowed(
            "Only portal administrators may change database targets.",
            user=by,
            action="dbops.target.update_refused",
            obj=target,
        )
    tenants = list(tenants)
    locked = DatabaseTarget.objects.select_for_update().get(pk=target.pk)
    changed = [k for k in TARGET_FIELDS if k in data and getattr(locked, k) != data[k]]
    for key in changed:
        setattr(locked, key, data[key])
    if password:
        locked.set_password(password)
        changed.append("password")
    elif clear_password and locked.has_password:
        locked.set_password("")
        changed.append("password")
    _validate(locked)
    locked.save()
    before = set(locked.tenants.values_list("pk", flat=True))
    if before != {t.pk for t in tenants}:
        locked.tenants.set(tenants)
        changed.append("tenants")
    audit_record(
        action="dbops.target.updated",
        user=by,
        obj=locked,
        details={"fields": changed, "password_stored": locked.has_password},
    )
    return locked


@service
def database_target_delete(*, target: DatabaseTarget, by) -> None:
    """Removes the target and its snapshots; its catalog component stays, since changes
    may name it. A target with proposed index changes is kept as their evidence."""
    if not access.can_manage_targets(by):
        raise NotAllowed(
            "Only portal administrators may remove database targets.",
            user=by,
            action="dbops.target.delete_refused",
            obj=target,
        )
    locked = (
        DatabaseTarget.objects.select_for_update().select_related("component").get(pk=target.pk)
    )
    if locked.index_suggestions.exists():
        raise Invalid(
            f"Changes were proposed for “{locked.name}”; deactivate it instead of removing it."
        )
    audit_record(
        action="dbops.target.deleted", user=by, obj=locked, details=_target_details(locked)
    )
    locked.delete()


@service(atomic=False)
def database_target_check(*, target: DatabaseTarget, by) -> dict[str, Any]:
    """ "Test connection": version, pg_stat_statements and missing privileges, stored on
    the target and audited (a failure too, with its reason)."""
    require_operator(by, action="dbops.target.check_refused", obj=target)
    check_visible(by, target, action="dbops.target.check_refused")
    try:
        with connect(target) as conn:
            report = stats.connection_report(conn)
    except TargetUnavailable as exc:
        report = {"ok": False, "error": exc.message}
    except psycopg.Error as exc:
        report = {"ok": False, "error": f"Connected, but a check failed: {query_failure(exc)}"}
    now = timezone.now()
    report["checked_at"] = now.isoformat()
    _check_store(target=target, by=by, report=report, now=now)
    return report


@service
def _check_store(*, target: DatabaseTarget, by, report: dict[str, Any], now) -> None:
    locked = DatabaseTarget.objects.select_for_update().get(pk=target.pk)
    locked.last_checked_at = now
    locked.last_check = report
    locked.save(update_fields=["last_checked_at", "last_check", "updated_at"])
    audit_record(
        action="dbops.target.checked",
        user=by,
        role=role_used(by),
        obj=locked,
        outcome=AuditEvent.Outcome.SUCCESS if report["ok"] else AuditEvent.Outcome.FAILURE,
        details={
            "server_version": report.get("server_version"),
            "statements": (report.get("statements") or {}).get("state"),
            "missing": report.get("missing", []),
            "error": report.get("error", ""),
        },
    )
