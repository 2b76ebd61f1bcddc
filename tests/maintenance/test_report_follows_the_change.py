"""The window's report reflects the current state (issue 8, item 8b), with a real worker:
a change that moves on after its window (reviewed, closed) has the stored report
generated again, and each generation says when it was made and the audit chain head at
that moment, so an auditor can place it in the chain.

Before the fix the HTML and PDF report froze when the window ended: after the change was
closed the PDF still said "Completed".
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from pypdf import PdfReader

from changes.models import ChangeRequest, State
from changes.services import change_close, review_submit
from maintenance.models import MaintenanceExecution, MaintenanceWindow, WindowType
from maintenance.services import execution_report_generate
from portal.models import AuditEvent
from tests.maintenance.execution_helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _stored_pdf_text(execution: MaintenanceExecution) -> str:
    with execution.report.open("rb") as handle:
        reader = PdfReader(io.BytesIO(handle.read()))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


@pytest.fixture
def finished(cal_slot, settings, tmp_path):
    """A window that ran; its one change completed; the report stored as it finished."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    start = timezone.now() - timedelta(hours=2)
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE, start=start, duration_minutes=60, title="Ran window"
    )
    change = cal_slot(window, title="Rotate the claims certificates")
    ChangeRequest.objects.filter(pk=change.pk).update(state=State.COMPLETED)
    execution = MaintenanceExecution.objects.create(
        window=window,
        planned_at=start,
        started_at=start,
        completed_at=start + timedelta(minutes=40),
        status=MaintenanceExecution.Status.COMPLETED,
    )
    execution_report_generate(execution_id=execution.pk)
    return MaintenanceExecution.objects.get(pk=execution.pk), change


def _review_and_close(change, requester, notes: str) -> None:
    review_submit(
        change=ChangeRequest.objects.get(pk=change.pk),
        by=requester,
        outcome="SUCCESSFUL",
        notes=notes,
    )
    change_close(change=ChangeRequest.objects.get(pk=change.pk), by=requester)


@pytest.mark.worker
def test_the_stored_report_is_generated_again_when_its_change_moves_on(
    celery_worker, finished, requester
):
    execution, change = finished
    first_at, first_sequence = execution.report_generated_at, execution.report_chain_sequence
    assert "final state Completed" in _stored_pdf_text(execution)

    _review_and_close(change, requester, "Certificates rotated; clients reconnected.")

    def regenerated_after_closing():
        current = MaintenanceExecution.objects.get(pk=execution.pk)
        return current if "final state Closed" in _stored_pdf_text(current) else None

    current = wait_until(regenerated_after_closing, timeout=60, what="the report to follow")
    assert current.report_generated_at > first_at
    assert current.report_chain_sequence > first_sequence
    # The head it names is the chain's row at that sequence, and the PDF says so.
    head = AuditEvent.objects.get(sequence=current.report_chain_sequence)
    assert current.report_chain_head == head.hash
    text = _stored_pdf_text(current)
    assert f"sequence {head.sequence}" in text and head.hash[:32] in text.replace(" ", "")
    assert "Generated " in text
    assert (
        AuditEvent.objects.filter(
            action="execution.report_generated", object_id=str(execution.window_id)
        ).count()
        >= 2
    )  # each generation is on record, the earlier files kept


def test_an_older_rendering_that_finishes_last_does_not_replace_the_newer_report(
    finished, requester
):
    """Two generations race on a worker with two threads: the one rendered before the
    close finishes storing after the one rendered after it. The stored report stays the
    newer one (the CI run of stop 17 met this as "the report to follow" timing out)."""
    from maintenance.reports import render_pdf
    from maintenance.services.reports import _store

    execution, change = finished
    older = render_pdf(MaintenanceExecution.objects.get(pk=execution.pk))
    _review_and_close(change, requester, "Certificates rotated.")
    newer = execution_report_generate(execution_id=execution.pk)

    filename, pdf, context = older
    _store(execution_id=execution.pk, filename=filename, pdf=pdf, context=context)

    current = MaintenanceExecution.objects.get(pk=execution.pk)
    assert current.report.name == newer.report.name
    assert current.report_chain_sequence == newer.report_chain_sequence
    assert "final state Closed" in _stored_pdf_text(current)
