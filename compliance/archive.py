"""Deleting a retained record (refused inside the period) and the archive path beyond it.

``record_delete`` is the one service that deletes protected records: inside the
retention period the guard refuses and the refusal is audited. ``change_archive`` writes
a change's signed evidence pack to storage (``archive/<year>/``) and audits it; with
``delete=True``, once the pack is stored and only past the retention period, it removes
the change, its approvals, review, procedures, runs and steps. Audit events are never
deleted by the portal (see the README's "For auditors").
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from changes.models import FINISHED_STATES, ChangeRequest
from compliance import retention
from compliance.evidence.pack import build_pack
from maintenance.models import ProcedureRun
from portal.audit import audit_record
from portal.models import AuditEvent
from portal.transactions import service


@service
def record_delete(*, obj, by) -> None:
    """Delete one record, if its retention period is over; refused (and audited) if not."""
    token = retention.bind_actor(by)
    try:
        if isinstance(obj, AuditEvent):
            # The database refuses (append-only triggers); say so as a refusal.
            raise retention.RetentionRefused(
                f"Audit event #{obj.sequence} is part of the append-only audit trail and is "
                "never deleted.",
                user=by,
                action="retention.delete_refused",
                obj=obj,
                details={"model": "portal.auditevent"},
            )
        # Checked before Django collects what the delete would take with it: the refusal
        # names the record asked for, not the first protected row underneath it.
        retention.refuse_if_retained(obj)
        label = getattr(obj, "public_id", None) or f"{obj._meta.label_lower} {obj.pk}"
        details = {
            "model": obj._meta.label_lower,
            "kept_until": retention.kept_until(obj).isoformat(),
        }
        obj.delete()
        audit_record(
            action="retention.deleted",
            user=by,
            object_type=obj._meta.label_lower,
            object_id=label,
            details=details,
        )
    finally:
        retention.unbind_actor(token)


def archive_candidates(*, now: datetime | None = None) -> list[ChangeRequest]:
    """Finished changes whose retention period is over, oldest first."""
    now = now or timezone.now()
    # A coarse prefilter in the database (no year is longer than 366 days); the exact
    # rule is retention.retained's.
    rough = now - timedelta(days=365 * retention.settings.RETENTION_YEARS)
    candidates = ChangeRequest.objects.filter(
        state__in=FINISHED_STATES, updated_at__lt=rough, created_at__lt=rough
    ).order_by("pk")
    return [c for c in candidates.iterator() if not retention.retained(c, now=now)]


@service(atomic=False)
def change_archive(*, change: ChangeRequest, by=None, delete: bool = False) -> str:
    """Store the change's signed pack; then, if asked and allowed, delete the change."""
    name, spool, manifest = build_pack(change, by=by)
    with spool:
        body = spool.read()
        digest = hashlib.sha256(body).hexdigest()
        spool.seek(0)
        year = (retention.last_activity(change) or timezone.now()).year
        stored = default_storage.save(f"archive/{year}/{name}", File(spool))
    _archived(change=change, by=by, stored=stored, digest=digest, events=len(manifest["events"]))
    if delete:
        _purge(change=change, by=by)
    return stored


@service
def _archived(*, change: ChangeRequest, by, stored: str, digest: str, events: int) -> None:
    audit_record(
        action="retention.archived",
        user=by,
        obj=change,
        details={"file": stored, "sha256": digest, "events": events},
    )


@service
def _purge(*, change: ChangeRequest, by) -> None:
    """Runs hold their change with PROTECT: they go first, their steps with them."""
    token = retention.bind_actor(by)
    try:
        locked = ChangeRequest.objects.select_for_update().get(pk=change.pk)
        public_id = locked.public_id
        for run in ProcedureRun.objects.filter(change=locked):
            run.delete()
        locked.delete()
    finally:
        retention.unbind_actor(token)
    audit_record(
        action="retention.deleted",
        user=by,
        object_type="changes.changerequest",
        object_id=public_id,
        details={"archived": True},
    )
