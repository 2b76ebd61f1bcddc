"""The procedures a change will run. Changing them after approval sends the change
back to review: the approvers approved what would run, not what runs now."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from changes import access as change_access
from changes import services as change_services
from changes.models import IMPACT_RANK, ChangeRequest, State
from maintenance.models import ChangeProcedure, ScheduledChange
from maintenance.procedures import UnknownProcedure, registry
from maintenance.procedures.base import ParamsRefused
from portal.audit import audit_record
from portal.errors import Conflict, Invalid, NotAllowed
from portal.transactions import service


def _lock(change: ChangeRequest) -> ChangeRequest:
    return ChangeRequest.objects.select_for_update().get(pk=change.pk)


@service
def change_procedure_add(*, change: ChangeRequest, by, kind: str, params: Any) -> ChangeProcedure:
    """Add a procedure with parameters validated by its kind's form. ``params`` is the
    submitted QueryDict (multi-valued fields keep every value) or a dict."""
    try:
        procedure = registry.get(kind)
    except UnknownProcedure:
        raise Invalid(f"Unknown procedure kind {kind!r}.") from None
    locked = _lock(change)
    change_access.require(by, locked, "edit_procedures")
    try:
        clean = procedure.clean_params(params, user=by)
    except ParamsRefused as exc:
        # The form named something this user may not use (a hidden target): refused and
        # audited, never listed or connected to.
        raise NotAllowed(
            exc.message,
            user=by,
            action="change.procedure_refused",
            obj=locked,
            details={"kind": kind, **exc.details},
        ) from None
    except ValidationError as exc:
        raise Invalid("; ".join(exc.messages)) from None
    position = locked.procedures.count() + 1
    item = ChangeProcedure.objects.create(
        change=locked, position=position, kind=kind, params=clean, added_by=by
    )
    audit_record(
        action="change.procedure_added",
        user=by,
        obj=locked,
        details={"kind": kind, "summary": procedure.summary(clean)},
    )
    _after_edit(locked, by, reason=f"procedure {procedure.label} added")
    return item


@service
def change_procedure_remove(*, item: ChangeProcedure, by) -> None:
    locked = _lock(item.change)
    change_access.require(by, locked, "edit_procedures")
    if item.runs.exists():
        raise Conflict("This procedure has run; it stays on record.")
    kind = item.kind
    item.delete()
    audit_record(action="change.procedure_removed", user=by, obj=locked, details={"kind": kind})
    _after_edit(locked, by, reason=f"procedure {kind} removed")


def _after_edit(change: ChangeRequest, by, *, reason: str) -> None:
    procedures_profile_refresh(change=change)
    if change.state in (State.APPROVED, State.SCHEDULED):
        ScheduledChange.objects.filter(change=change).delete()
        change_services.change_reopen_review(change=change, by=by, reason=reason)


@service
def procedures_profile_refresh(*, change: ChangeRequest) -> None:
    """Record on the change what its procedures declare (count, impact, downtime)."""
    items = list(change.procedures.all())
    impact, downtime = "", False
    for item in items:
        procedure = registry.get(item.kind)
        declared = procedure.impact(item.params)
        if IMPACT_RANK.get(declared, 0) > IMPACT_RANK.get(impact, 0):
            impact = declared
        downtime = downtime or procedure.requires_downtime(item.params)
    change_services.change_procedure_profile_set(
        change=change, count=len(items), impact=impact, requires_downtime=downtime
    )
