"""Backups are evidence: stored through Django storage with their SHA-256 and size, read
back only after their checksum matches, deleted after the retention period while their
records stay."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from maintenance.security.executors.base import BackupFile, UpdateFailed
from maintenance.security.models import ComponentBackup
from portal.audit import audit_record
from portal.models import Component
from portal.transactions import service

logger = logging.getLogger(__name__)
CHUNK = 1024 * 1024


def sha256_of(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@service
def backup_store(
    *, local: BackupFile, component: Component, run_id: int | None, change=None
) -> ComponentBackup:
    """Put a backup file into storage and record it with its checksum and size."""
    sha, size = sha256_of(local.path)
    now = timezone.now()
    name = f"security-backups/{component.pk}/{now:%Y%m%dT%H%M%S}-run{run_id or 0}-{local.path.name}"
    with local.path.open("rb") as fh:
        stored = default_storage.save(name, File(fh))
    backup = ComponentBackup.objects.create(
        component=component,
        run_id=run_id,
        kind=local.kind,
        file=stored,
        sha256=sha,
        size_bytes=size,
        metadata=local.metadata,
        created_at=now,
    )
    audit_record(
        action="security.backup_stored",
        obj=change if change is not None else component,
        details={
            "backup": backup.pk,
            "component": component.name,
            "kind": local.kind,
            "sha256": sha,
            "size_bytes": size,
        },
    )
    return backup


def backup_fetch(backup: ComponentBackup, dest_dir: Path) -> Path:
    """Copy a stored backup to a local file, refusing one whose checksum changed."""
    if backup.pruned_at is not None or not backup.file:
        raise UpdateFailed("The backup file was pruned by retention; nothing to restore from.")
    dest = dest_dir / f"restore-{backup.pk}-{Path(backup.file.name).name}"
    digest = hashlib.sha256()
    with backup.file.open("rb") as src, dest.open("wb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != backup.sha256:
        dest.unlink(missing_ok=True)
        raise UpdateFailed(
            "The stored backup's SHA-256 no longer matches the one recorded when it was "
            "taken; it was not restored."
        )
    return dest


def backups_prune(*, now: datetime | None = None, limit: int = 500) -> int:
    """Delete backup files past SECURITY_BACKUP_RETENTION_DAYS; keep every record."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.SECURITY_BACKUP_RETENTION_DAYS)
    pruned = 0
    due = ComponentBackup.objects.filter(pruned_at__isnull=True, created_at__lt=cutoff)
    for backup in due.order_by("created_at")[:limit]:
        try:
            if backup.file and default_storage.exists(backup.file.name):
                default_storage.delete(backup.file.name)
        except OSError:
            logger.exception("could not delete backup file %s", backup.file.name)
            continue
        with transaction.atomic():
            ComponentBackup.objects.filter(pk=backup.pk).update(pruned_at=now)
            audit_record(
                action="security.backup_pruned",
                obj=backup.component,
                details={
                    "backup": backup.pk,
                    "sha256": backup.sha256,
                    "size_bytes": backup.size_bytes,
                    "retention_days": settings.SECURITY_BACKUP_RETENTION_DAYS,
                },
            )
        pruned += 1
    return pruned
