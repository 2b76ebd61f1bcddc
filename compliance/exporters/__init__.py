"""Exporters by identifier: the download views and the export task look them up here."""

from __future__ import annotations

from compliance import access
from compliance.exporters.audit import AuditExporter
from compliance.exporters.base import FORMATS, Exporter, ExportFile
from compliance.exporters.changes import ChangeRegisterExporter
from portal.errors import Invalid, NotAllowed

EXPORTERS: dict[str, type[Exporter]] = {
    ChangeRegisterExporter.identifier: ChangeRegisterExporter,
    AuditExporter.identifier: AuditExporter,
}


def exporter_for(*, identifier: str, user, data) -> Exporter:
    """The exporter, after the rule of what it exports: the register follows the change
    list's visibility (inside its selector); the audit trail is for auditors only."""
    cls = EXPORTERS.get(identifier)
    if cls is None:
        raise Invalid("Choose the change register or the audit trail.")
    if identifier == "audit" and not access.is_auditor(user):
        raise NotAllowed(
            "Only Compliance may export the audit trail.", user=user, action="export.audit"
        )
    return cls(user=user, data=data)


__all__ = [
    "EXPORTERS",
    "FORMATS",
    "AuditExporter",
    "ChangeRegisterExporter",
    "ExportFile",
    "exporter_for",
]
