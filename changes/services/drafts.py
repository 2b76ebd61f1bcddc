"""Writing a change request: create, edit, copy and cancel it, and record what its
procedures declare."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from changes import access
from changes.models import ChangeRequest
from changes.services.common import (
    check_version,
    lock_change,
    notify_pending_approvers_closed,
    save_versioned,
)
from portal.audit import audit_record
from portal.errors import Invalid, NotAllowed
from portal.models import Component, Service, Tenant
from portal.permissions import visible_tenants
from portal.roles import Role
from portal.transactions import service

EDITABLE_FIELDS = (
    "title",
    "description",
    "type",
    "priority",
    "proposed_start",
    "window_minutes",
    "blackout_exception",
    "implementation_plan",
    "backout_plan",
    "verification_plan",
)
MAX_LEAD = timedelta(days=2 * 365)


def _set_impact(change: ChangeRequest, *, components, services, tenants) -> None:
    change.components.set(components)
    change.services.set(services)
    change.tenants.set(tenants)


def _check_impact_visible(by, tenants: list[Tenant]) -> None:
    if not access.check_tenants_visible(by, tenants):
        raise Invalid("You can only name tenants you have access to.")


def _check_schedule(data: dict[str, Any]) -> None:
    start, minutes = data.get("proposed_start"), data.get("window_minutes")
    if start is None or start > timezone.now() + MAX_LEAD:
        raise Invalid("The proposed start must be within the next two years.")
    if not isinstance(minutes, int) or not 1 <= minutes <= 1440:
        raise Invalid("The window must be between 1 and 1440 minutes.")


@service
def change_create(
    *,
    by,
    data: dict[str, Any],
    components: Iterable[Component],
    services: Iterable[Service],
    tenants: Iterable[Tenant],
    copied_from: ChangeRequest | None = None,
) -> ChangeRequest:
    if not access.can_create(by):
        raise NotAllowed(
            "Your roles do not allow filing change requests.",
            user=by,
            action="change.create_refused",
        )
    tenants = list(tenants)
    _check_impact_visible(by, tenants)
    _check_schedule(data)
    change = ChangeRequest(
        requester=by,
        copied_from=copied_from,
        **{k: data[k] for k in EDITABLE_FIELDS},
    )
    change.save()
    _set_impact(change, components=components, services=services, tenants=tenants)
    audit_record(
        action="change.created",
        user=by,
        role=Role.REQUESTER,
        obj=change,
        details={
            "title": change.title,
            "copied_from": copied_from.public_id if copied_from else None,
        },
    )
    return change


@service
def change_update(
    *,
    change: ChangeRequest,
    by,
    data: dict[str, Any],
    components: Iterable[Component],
    services: Iterable[Service],
    tenants: Iterable[Tenant],
    version: int | None,
) -> ChangeRequest:
    tenants = list(tenants)
    locked = lock_change(change.pk)
    access.require(by, locked, "edit")
    _check_impact_visible(by, tenants)
    _check_schedule(data)
    check_version(locked, version)
    changed = [k for k in EDITABLE_FIELDS if getattr(locked, k) != data[k]]
    for key in EDITABLE_FIELDS:
        setattr(locked, key, data[key])
    save_versioned(locked, EDITABLE_FIELDS)
    _set_impact(locked, components=components, services=services, tenants=tenants)
    audit_record(
        action="change.updated",
        user=by,
        role=Role.REQUESTER,
        obj=locked,
        details={"fields": changed},
    )
    return locked


@service
def change_cancel(
    *, change: ChangeRequest, by, reason: str = "", version: int | None = None
) -> ChangeRequest:
    locked = lock_change(change.pk)
    access.require(by, locked, "cancel")
    check_version(locked, version)
    locked.cancel()
    save_versioned(locked, ["state"])
    audit_record(
        action="change.cancelled",
        user=by,
        role=Role.REQUESTER,
        obj=locked,
        details={"reason": reason[:2000]},
    )
    notify_pending_approvers_closed(locked, "cancelled")
    return locked


@service
def change_copy(*, change: ChangeRequest, by) -> ChangeRequest:
    """'Copy to new draft' for a rejected or cancelled change."""
    access.require(by, change, "copy")
    data = {k: getattr(change, k) for k in EDITABLE_FIELDS}
    if data["proposed_start"] <= timezone.now():
        data["proposed_start"] = timezone.now() + timedelta(days=7)
    visible = set(visible_tenants(by).values_list("pk", flat=True))
    return change_create(
        by=by,
        data=data,
        components=list(change.components.all()),
        services=list(change.services.all()),
        tenants=[t for t in change.tenants.all() if t.pk in visible],
        copied_from=change,
    )


@service
def change_procedure_profile_set(
    *, change: ChangeRequest, count: int, impact: str, requires_downtime: bool
) -> None:
    """Record what the change's procedures declare (how many, the highest impact,
    whether any needs downtime): pages show it and the risk assessment weighs it."""
    ChangeRequest.objects.filter(pk=change.pk).update(
        procedure_count=count, procedure_impact=impact, requires_downtime=requires_downtime
    )
    change.procedure_count = count
    change.procedure_impact = impact
    change.requires_downtime = requires_downtime
