"""The procedures of standard change templates (``changes.standard`` asks through the
bridge registered here, since changes cannot import maintenance).

A template copies the procedures of a change, as their kinds' forms validated them; a
change filed from the template gets exactly those, as the template's approvers approved
them, and its risk and review then weigh what they declare as for any change.
"""

from __future__ import annotations

from typing import Any

from changes import access as change_access
from changes import standard
from changes.models import ChangeRequest
from maintenance.models import ChangeProcedure
from maintenance.procedures import UnknownProcedure, registry
from maintenance.services.procedures import procedures_profile_refresh
from portal.audit import audit_record
from portal.errors import Invalid
from portal.transactions import service


def snapshot(change: ChangeRequest) -> list[dict[str, Any]]:
    items = []
    for item in change.procedures.order_by("position"):
        try:
            label = registry.get(item.kind).summary(item.params)
        except UnknownProcedure:
            label = item.kind
        items.append({"kind": item.kind, "params": item.params, "summary": label})
    return items


@service
def template_procedures_attach(*, change: ChangeRequest, by, procedures: list[dict]) -> None:
    locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
    change_access.require(by, locked, "edit_procedures")
    start = locked.procedures.count()
    for offset, entry in enumerate(procedures, start=1):
        kind = entry.get("kind", "")
        try:
            procedure = registry.get(kind)
        except UnknownProcedure:
            raise Invalid(f"The template names an unknown procedure kind {kind!r}.") from None
        ChangeProcedure.objects.create(
            change=locked,
            position=start + offset,
            kind=kind,
            params=entry.get("params") or {},
            added_by=by,
        )
        audit_record(
            action="change.procedure_added",
            user=by,
            obj=locked,
            details={"kind": kind, "summary": procedure.summary(entry.get("params") or {}),
                     "from_template": True},
        )  # fmt: skip
    procedures_profile_refresh(change=locked)
    change.procedure_count = locked.procedure_count
    change.procedure_impact = locked.procedure_impact
    change.requires_downtime = locked.requires_downtime


def register() -> None:
    standard.register_procedure_bridge(
        standard.ProcedureBridge(snapshot=snapshot, attach=template_procedures_attach)
    )
