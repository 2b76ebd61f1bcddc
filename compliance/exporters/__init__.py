"""Exporters by identifier: the download views and the export task look them up here."""

from __future__ import annotations

from compliance.exporters.audit import AuditExporter
from compliance.exporters.base import FORMATS, Exporter, ExportFile
from compliance.exporters.changes import ChangeRegisterExporter

EXPORTERS: dict[str, type[Exporter]] = {
    ChangeRegisterExporter.identifier: ChangeRegisterExporter,
    AuditExporter.identifier: AuditExporter,
}

__all__ = ["EXPORTERS", "FORMATS", "AuditExporter", "ChangeRegisterExporter", "ExportFile"]
