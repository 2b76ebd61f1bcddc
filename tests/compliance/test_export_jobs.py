"""Background exports: the worker runs the same exporter, reports progress, and keeps the
file in storage for its requester alone."""

from __future__ import annotations

import hashlib

import pytest

from compliance.models import ExportJob
from portal.models import AuditEvent
from tests.compliance.conftest import xlsx_rows
from tests.maintenance.execution_helpers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_a_background_export_is_built_by_the_worker_and_downloaded_by_its_requester(
    celery_worker, client, compliance, make_change, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.EXPORT_CHUNK_ROWS = 100
    for n in range(250):
        make_change(title=f"Change {n}", type="SECURITY" if n % 2 else "FEATURE")
    client.force_login(compliance)

    started = client.post(
        "/reports/exports/",
        {"exporter": "changes", "format": "xlsx", "type": "SECURITY"},
        HTTP_HX_REQUEST="true",
    )
    job = ExportJob.objects.get()
    done = wait_until(
        lambda: ExportJob.objects.filter(pk=job.pk, status__in=["DONE", "FAILED"]).first(),
        timeout=60,
        what="the export to finish",
    )
    fragment = client.get(f"/reports/exports/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    download = client.get(f"/reports/exports/{job.pk}/download/")
    body = b"".join(download.streaming_content)

    assert started.status_code == 200 and 'hx-trigger="every 1s"' in started.content.decode()
    assert done.status == "DONE", done.error
    assert (done.rows_total, done.rows_done) == (125, 125)
    assert "every 1s" not in fragment and "Download" in fragment
    assert download.status_code == 200
    assert hashlib.sha256(body).hexdigest() == done.sha256
    rows = xlsx_rows(body)
    assert len(rows) == 126 and {r[2] for r in rows[1:]} == {"SECURITY"}
    actions = set(AuditEvent.objects.filter(object_id=str(job.pk)).values_list("action", flat=True))
    assert {
        "export.changes.requested",
        "export.changes.ready",
        "export.changes.downloaded",
    } <= actions


def test_someone_elses_export_is_a_404(
    celery_worker, client, compliance, make_user, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    auditor = make_user("auditor2", ["COMPLIANCE"])
    client.force_login(compliance)
    client.post("/reports/exports/", {"exporter": "audit", "format": "csv"})
    job = wait_until(lambda: ExportJob.objects.filter(status="DONE").first(), what="the export")

    client.force_login(auditor)

    assert client.get(f"/reports/exports/{job.pk}/").status_code == 404
    assert client.get(f"/reports/exports/{job.pk}/download/").status_code == 404
    assert AuditEvent.objects.filter(action="export.hidden", username="auditor2").count() == 2


def test_a_background_export_with_bad_filters_is_refused_before_it_is_queued(
    celery_worker, client, compliance
):
    client.force_login(compliance)

    response = client.post(
        "/reports/exports/", {"exporter": "audit", "format": "xlsx", "to": "soon"}
    )

    assert response.status_code == 400
    assert "These filters were not understood" in response.content.decode()
    assert not ExportJob.objects.exists()


def test_only_compliance_may_queue_an_audit_export(celery_worker, client, security):
    client.force_login(security)

    response = client.post("/reports/exports/", {"exporter": "audit", "format": "csv"})

    assert response.status_code == 403
    assert not ExportJob.objects.exists()
