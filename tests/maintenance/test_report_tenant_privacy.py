"""A window's report and notices name only the changes their reader may see and say how
many they withhold (issue 8, item 15).

Before the fix an operator who may see one tenant opened the report of a window that
also held another tenant's change: 200, with that change's title.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from pypdf import PdfReader

from maintenance.models import MaintenanceExecution
from maintenance.services import execution_report_generate, window_notices_send
from portal.models import Notification

pytestmark = pytest.mark.django_db

START = datetime(2027, 6, 13, 1, 0, tzinfo=UTC)  # a Sunday, no blackout
OURS = "Rotate the Acme certificates"
THEIRS = "Globex oncology records migration"


@pytest.fixture
def window(cal_window, cal_slot, other_tenant, make_user):
    window = cal_window(START)
    cal_slot(window, title=OURS)
    cal_slot(
        window,
        title=THEIRS,
        tenants=[other_tenant],
        requester_=make_user("globex-req", ["REQUESTER"], tenants=[other_tenant]),
    )
    return window


@pytest.fixture
def ran(window, settings, tmp_path):
    """The window ran; its complete report is stored (the PDF auditors keep)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    execution = MaintenanceExecution.objects.create(
        window=window,
        planned_at=window.start,
        started_at=window.start,
        completed_at=window.start + timedelta(minutes=40),
        status=MaintenanceExecution.Status.COMPLETED,
    )
    execution_report_generate(execution_id=execution.pk)
    return MaintenanceExecution.objects.get(pk=execution.pk)


def _pdf_text(response) -> str:
    data = b"".join(response.streaming_content) if response.streaming else response.content
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_the_html_report_names_only_the_viewers_changes_and_counts_the_others(
    client, operator, ran, window
):
    client.force_login(operator)

    response = client.get(reverse("maintenance:report", args=[window.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert OURS in body
    assert THEIRS not in body and "globex-req" not in body and "Globex Clinics" not in body
    assert "1 other change in this window is not shown" in body


def test_the_pdf_for_a_one_tenant_viewer_withholds_the_other_tenants_change(
    client, operator, ran, window
):
    client.force_login(operator)

    response = client.get(reverse("maintenance:report_pdf", args=[window.pk]))

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = _pdf_text(response)
    assert OURS in text
    assert THEIRS not in text and "Globex" not in text
    assert "1 other change in this window is not shown" in " ".join(text.split())


def test_someone_who_sees_every_tenant_gets_the_complete_stored_pdf(
    client, compliance, ran, window
):
    client.force_login(compliance)

    response = client.get(reverse("maintenance:report_pdf", args=[window.pk]))

    text = _pdf_text(response)
    assert OURS in text and THEIRS in text
    assert "not shown" not in text


def test_the_window_page_does_not_name_the_other_tenants_change(client, operator, ran, window):
    client.force_login(operator)

    body = client.get(reverse("maintenance:window", args=[window.pk])).content.decode()

    assert OURS in body
    assert THEIRS not in body
    assert "(restricted)" in body


def test_the_pre_start_notice_withholds_it_too(
    window, operator, django_capture_on_commit_callbacks
):
    with time_machine.travel(START - timedelta(minutes=59), tick=False):
        window_notices_send()

    note = Notification.objects.get(recipient=operator, dedup_key=f"window:{window.pk}:notice:60")
    assert OURS in note.body
    assert THEIRS not in note.body
    assert "and 1 other change(s)" in note.body
