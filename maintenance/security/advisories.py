"""Importing OSV advisories: by upload or from the advisories directory (beat)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from maintenance.security import osv, selectors
from maintenance.security.inventory import exposures_refresh_for
from maintenance.security.models import Advisory, AdvisoryPackage
from portal.audit import audit_record
from portal.errors import Invalid, NotAllowed
from portal.models import AuditEvent
from portal.transactions import service

logger = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    name: str
    sha256: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    components: int = 0

    @property
    def message(self) -> str:
        parts = [f"{len(self.created)} new", f"{len(self.updated)} updated"]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} already up to date")
        return (
            f"{self.name}: {', '.join(parts)}; {self.components} component(s) matched against them."
        )


@service
def advisories_import(
    *,
    data: bytes,
    name: str,
    by=None,
    source: str = Advisory.Source.UPLOAD,
    now: datetime | None = None,
) -> ImportSummary:
    """Import one file of OSV JSON: everything in it or nothing."""
    if by is not None and not selectors.may_manage(by):
        raise NotAllowed(
            "Only Security and Operations import advisories.",
            user=by,
            action="security.import_refused",
        )
    name = Path(name or "upload.json").name[:200]
    try:
        records = osv.parse(data, name=name)
    except osv.NotOSV as exc:
        raise Invalid(str(exc)) from None
    now = now or timezone.now()
    summary = ImportSummary(name=name, sha256=hashlib.sha256(data).hexdigest())
    keys: set[tuple[str, str]] = set()
    ids: list[int] = []
    for record in records:
        existing = Advisory.objects.select_for_update().filter(osv_id=record.osv_id).first()
        if existing is not None and existing.modified >= record.modified:
            summary.unchanged.append(record.osv_id)
            continue
        values = {
            "aliases": record.aliases,
            "summary": record.summary,
            "details": record.details,
            "severity": record.severity,
            "severity_rank": osv.SEVERITY_RANK[record.severity],
            "cvss_vector": record.cvss_vector,
            "cvss_score": record.cvss_score,
            "published": record.published,
            "modified": record.modified,
            "withdrawn": record.withdrawn,
            "source": source,
            "source_name": name,
            "sha256": summary.sha256,
            "raw": record.raw,
            "imported_at": now,
            "imported_by": by if by is not None and by.is_authenticated else None,
        }
        if existing is None:
            advisory = Advisory.objects.create(osv_id=record.osv_id, **values)
            summary.created.append(record.osv_id)
        else:
            for key, value in values.items():
                setattr(existing, key, value)
            existing.save()
            existing.packages.all().delete()
            advisory = existing
            summary.updated.append(record.osv_id)
        AdvisoryPackage.objects.bulk_create(
            AdvisoryPackage(
                advisory=advisory,
                ecosystem=p.ecosystem,
                name=p.name,
                ranges=p.ranges,
                versions=p.versions,
            )
            for p in record.packages
        )
        keys |= {(p.ecosystem, p.name) for p in record.packages}
        ids.append(advisory.pk)
    summary.components = exposures_refresh_for(keys, ids) if ids else 0
    audit_record(
        action="security.advisories_imported",
        user=by,
        object_type="maintenance.advisory",
        object_id=name[:64],
        details={
            "file": name,
            "source": source,
            "sha256": summary.sha256,
            "created": summary.created,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
        },
    )
    return summary


def advisories_import_directory() -> dict[str, int]:
    """Beat: import every *.json file in SECURITY_ADVISORIES_DIR, then move it to
    imported/ or, with the reason beside it, to rejected/."""
    base = Path(settings.SECURITY_ADVISORIES_DIR)
    counts = {"imported": 0, "rejected": 0}
    if not base.is_dir():
        return counts
    for path in sorted(base.glob("*.json")):
        if path.is_symlink() or not path.is_file():
            continue
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
        try:
            if path.stat().st_size > osv.MAX_FILE_BYTES:
                raise Invalid(f"{path.name} is larger than the 5 MB an advisory file may be.")
            advisories_import(
                data=path.read_bytes(), name=path.name, source=Advisory.Source.DIRECTORY
            )
        except Invalid as exc:
            _move(path, base / "rejected" / f"{stamp}-{path.name}")
            (base / "rejected" / f"{stamp}-{path.name}.error.txt").write_text(exc.message + "\n")
            with transaction.atomic():
                audit_record(
                    action="security.advisories_rejected",
                    object_type="maintenance.advisory",
                    object_id=path.name[:64],
                    outcome=AuditEvent.Outcome.FAILURE,
                    details={"file": path.name, "reason": exc.message[:1000]},
                )
            counts["rejected"] += 1
            continue
        _move(path, base / "imported" / f"{stamp}-{path.name}")
        counts["imported"] += 1
    return counts


def _move(path: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    path.replace(dest)
