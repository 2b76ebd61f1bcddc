"""The window's report carries each procedure's verification figures (issue 8, item 8c):
an index's statement mean time before and after, as the run recorded it, in the HTML
report and in the stored PDF."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from changes.models import ChangeRequest, State
from maintenance.models import (
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceWindow,
    ProcedureRun,
    WindowType,
)
from maintenance.reports import render_pdf

pytestmark = pytest.mark.django_db

MEASURED = {
    "status": "measured",
    "mean_before_ms": 41.7,
    "mean_after_ms": 0.9,
    "new_calls": 120,
    "improvement_percent": 97.8,
}


@pytest.fixture
def execution(cal_slot, requester):
    start = timezone.now() - timedelta(hours=2)
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE, start=start, duration_minutes=60, title="Index window"
    )
    change = cal_slot(window, title="Index claims")
    ChangeRequest.objects.filter(pk=change.pk).update(state=State.COMPLETED)
    execution = MaintenanceExecution.objects.create(
        window=window, planned_at=start, started_at=start, status="COMPLETED"
    )
    item = ChangeProcedure.objects.create(
        change=change, position=1, kind="db_create_index", params={}, added_by=requester
    )
    ProcedureRun.objects.create(
        procedure=item,
        change=change,
        execution=execution,
        idempotency_key=f"figures-{item.pk}",
        status="SUCCEEDED",
        started_at=start,
        finished_at=start + timedelta(minutes=5),
        result={"improvement": MEASURED},
    )
    return execution


def test_the_report_shows_the_index_mean_time_before_and_after(client, operator, execution):
    client.force_login(operator)

    html = client.get(reverse("maintenance:report", args=[execution.window_id])).content.decode()

    assert "Verification: statement mean time" in html
    assert "<td>41.7</td><td>0.9</td><td>120</td><td>97.8</td><td>measured</td>" in html


def test_the_stored_pdf_shows_them_too(execution):
    _, pdf, _ = render_pdf(execution)

    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Verification: statement mean time" in text
    assert "41.7" in text and "97.8" in text
