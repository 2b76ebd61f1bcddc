"""The stored PDF report of a window's execution: generated when it finishes and again
whenever a change in it moves on (closed, ratified, reviewed)."""

from __future__ import annotations

from django.core.files.base import ContentFile

from maintenance.models import MaintenanceExecution
from maintenance.reports import render_pdf
from portal.audit import audit_record
from portal.outbox import outbox_enqueue
from portal.transactions import service

FINISHED = (MaintenanceExecution.Status.COMPLETED, MaintenanceExecution.Status.FAILED)


@service(atomic=False)
def execution_report_generate(*, execution_id: int) -> MaintenanceExecution:
    """Render outside a transaction (WeasyPrint takes seconds), store inside one."""
    execution = MaintenanceExecution.objects.select_related("window").get(pk=execution_id)
    filename, pdf, context = render_pdf(execution)
    return _store(execution_id=execution_id, filename=filename, pdf=pdf, context=context)


@service
def _store(*, execution_id: int, filename: str, pdf: bytes, context: dict) -> MaintenanceExecution:
    locked = (
        MaintenanceExecution.objects.select_for_update()
        .select_related("window")
        .get(pk=execution_id)
    )
    stored = locked.report_chain_sequence
    if locked.report and stored is not None and stored > context["chain_sequence"]:
        # Two generations raced (a change reviewed, then closed, a second later) and the
        # later one is stored already: this older rendering must not replace it.
        return locked
    # Earlier files stay: each generation is evidence of what the report said then.
    locked.report.save(filename, ContentFile(pdf), save=False)
    locked.report_generated_at = context["generated_at"]
    locked.report_chain_sequence = context["chain_sequence"]
    locked.report_chain_head = context["chain_head"]
    locked.save(
        update_fields=[
            "report",
            "report_generated_at",
            "report_chain_sequence",
            "report_chain_head",
        ]
    )
    audit_record(
        action="execution.report_generated",
        obj=locked.window,
        details={
            "file": locked.report.name,
            "bytes": len(pdf),
            "chain_sequence": context["chain_sequence"],
        },
    )
    return locked


@service
def on_change_moved(change) -> None:
    """Listener (``changes.hooks``): a change in a finished window moved on, so that
    window's stored report is generated again."""
    for execution_id in MaintenanceExecution.objects.filter(
        window__scheduled_changes__change=change, status__in=FINISHED
    ).values_list("pk", flat=True):
        outbox_enqueue(task_name="maintenance.generate_report", args=[execution_id])
