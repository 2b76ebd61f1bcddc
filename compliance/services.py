"""Writes of the compliance app: export jobs, chain verifications, evidence downloads.

Every export is audited (who took which data out, with which filters): a download when
it starts, a background export when it is asked for and when its file is ready.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import F
from django.http import QueryDict
from django.utils import timezone

from compliance import access
from compliance.exporters import FORMATS, Exporter, exporter_for
from compliance.exporters.params import params_dict, params_querydict
from compliance.models import ChainVerification, ExportJob, JobStatus
from portal.audit import audit_record, verify_chain
from portal.errors import Invalid, NotAllowed
from portal.models import AuditEvent
from portal.outbox import outbox_enqueue
from portal.transactions import service

logger = logging.getLogger(__name__)


@service
def export_download_record(*, exporter: Exporter, fmt: str, by, data: QueryDict) -> None:
    audit_record(
        action=f"export.{exporter.identifier}.downloaded",
        user=by,
        object_type="export",
        object_id=f"{exporter.identifier}.{fmt}",
        details={"filters": params_dict(data)},
    )


@service
def export_job_create(*, by, identifier: str, fmt: str, data: QueryDict) -> ExportJob:
    if fmt not in FORMATS:
        raise Invalid("Choose CSV or XLSX.")
    exporter = exporter_for(identifier=identifier, user=by, data=data)  # validates filters
    job = ExportJob.objects.create(
        exporter=exporter.identifier, format=fmt, params=params_dict(data), requested_by=by
    )
    audit_record(
        action=f"export.{identifier}.requested",
        user=by,
        obj=job,
        details={"format": fmt, "filters": job.params},
    )
    outbox_enqueue(task_name="compliance.run_export", args=[job.pk])
    return job


def _job_progress(job_id: int):
    def report(done: int) -> None:
        ExportJob.objects.filter(pk=job_id).update(rows_done=done)

    return report


@service(atomic=False)
def export_job_run(*, job_id: int) -> str:
    """The worker's side: the same exporter, its stream written to storage. Each step
    commits on its own, so the page polling the job sees the progress."""
    claimed = ExportJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return "not claimed"
    job = ExportJob.objects.select_related("requested_by").get(pk=job_id)
    try:
        exporter = exporter_for(
            identifier=job.exporter, user=job.requested_by, data=params_querydict(job.params)
        )
        ExportJob.objects.filter(pk=job.pk).update(rows_total=exporter.count())
        export = exporter.render(job.format, progress=_job_progress(job.pk))
        digest, size = hashlib.sha256(), 0
        with tempfile.TemporaryFile() as spool:
            for chunk in export.stream:
                digest.update(chunk)
                size += len(chunk)
                spool.write(chunk)
            spool.seek(0)
            name = default_storage.save(f"exports/{job.pk}/{export.filename}", File(spool))
    except (Invalid, NotAllowed) as exc:
        _job_failed(job=job, error=exc.message)
        return "failed"
    except Exception as exc:
        logger.exception("export %s failed", job.pk)
        _job_failed(job=job, error=f"The export failed: {type(exc).__name__}.")
        return "failed"
    _job_done(
        job=job,
        name=name,
        filename=export.filename,
        content_type=export.content_type,
        size=size,
        sha256=digest.hexdigest(),
    )
    return "done"


@service
def _job_done(*, job: ExportJob, name: str, filename: str, content_type: str, size: int, sha256):
    ExportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.DONE,
        file=name,
        filename=filename,
        content_type=content_type,
        size=size,
        sha256=sha256,
        rows_done=F("rows_total"),
        finished_at=timezone.now(),
    )
    audit_record(
        action=f"export.{job.exporter}.ready",
        user=job.requested_by,
        obj=job,
        details={"format": job.format, "bytes": size, "sha256": sha256},
    )


@service
def _job_failed(*, job: ExportJob, error: str) -> None:
    ExportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error=error[:2000], finished_at=timezone.now()
    )
    audit_record(
        action=f"export.{job.exporter}.failed",
        user=job.requested_by,
        obj=job,
        outcome=AuditEvent.Outcome.FAILURE,
        details={"error": error[:500]},
    )


@service
def export_job_download_record(*, job: ExportJob, by) -> None:
    audit_record(
        action=f"export.{job.exporter}.downloaded",
        user=by,
        obj=job,
        details={"format": job.format, "sha256": job.sha256},
    )


# --- the audit chain ------------------------------------------------------------------


@service
def chain_verification_create(*, by) -> ChainVerification:
    if not access.is_auditor(by):
        raise NotAllowed(
            "Only Compliance may verify the audit chain.", user=by, action="audit.verify"
        )
    verification = ChainVerification.objects.create(requested_by=by)
    audit_record(action="audit.verify_requested", user=by, obj=verification)
    outbox_enqueue(task_name="compliance.verify_chain", args=[verification.pk])
    return verification


@service(atomic=False)
def chain_verification_run(*, verification_id: int) -> str:
    claimed = ChainVerification.objects.filter(pk=verification_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), total=AuditEvent.objects.count()
    )
    if not claimed:
        return "not claimed"

    def progress(checked: int) -> None:
        ChainVerification.objects.filter(pk=verification_id).update(checked=checked)

    try:
        report = verify_chain(progress=progress)
    except Exception as exc:
        logger.exception("chain verification %s failed", verification_id)
        ChainVerification.objects.filter(pk=verification_id).update(
            status=JobStatus.FAILED, error=type(exc).__name__, finished_at=timezone.now()
        )
        return "failed"
    _verification_done(verification_id=verification_id, report=report)
    return "intact" if report.intact else "broken"


@service
def _verification_done(*, verification_id: int, report) -> None:
    verification = ChainVerification.objects.select_for_update().get(pk=verification_id)
    first = report.breaks[0] if report.breaks else None
    verification.status = JobStatus.DONE
    verification.checked = report.checked
    verification.intact = report.intact
    verification.head_hash = report.head
    last = AuditEvent.objects.filter(hash=report.head).values_list("sequence", flat=True).first()
    verification.head_sequence = last
    verification.break_sequence = first.sequence if first else None
    verification.break_reason = first.reason[:300] if first else ""
    verification.finished_at = timezone.now()
    verification.save()
    details: dict[str, Any] = {"checked": report.checked, "head": report.head}
    if first:
        details["first_break"] = {"sequence": first.sequence, "reason": first.reason}
    audit_record(
        action="audit.chain_verified" if report.intact else "audit.chain_broken",
        user=verification.requested_by,
        obj=verification,
        outcome=AuditEvent.Outcome.SUCCESS if report.intact else AuditEvent.Outcome.FAILURE,
        details=details,
    )


# --- evidence packs -----------------------------------------------------------------


@service
def evidence_pack_record(*, change, by, manifest: dict[str, Any]) -> None:
    digest = hashlib.sha256(repr(sorted(manifest["files"].items())).encode()).hexdigest()
    audit_record(
        action="evidence.exported",
        user=by,
        obj=change,
        details={
            "files": len(manifest["files"]),
            "events": len(manifest["events"]),
            "chain_head": manifest["chain_head"],
            "key_id": manifest["signature"]["key_id"],
            "files_digest": digest,
        },
    )
