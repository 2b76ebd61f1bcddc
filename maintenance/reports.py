"""The execution report ("Document results"): one template for the page and the PDF."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import timezone

from changes.models import Approval
from maintenance.models import MaintenanceExecution, ProcedureRun, ScheduledChange, StepRun
from portal.audit import chain_head
from portal.models import AuditEvent


def report_context(execution: MaintenanceExecution) -> dict[str, Any]:
    window = execution.window
    slots = list(
        ScheduledChange.objects.filter(window=window)
        .select_related("change", "change__requester")
        .prefetch_related(
            Prefetch("change__approvals", queryset=Approval.objects.select_related("decided_by")),
            "change__tenants",
            "change__components",
        )
        .order_by("position")
    )
    runs = list(
        ProcedureRun.objects.filter(execution=execution)
        .select_related("procedure")
        .prefetch_related(Prefetch("steps", queryset=StepRun.objects.order_by("position")))
        .order_by("change_id", "procedure__position", "attempt")
    )
    runs_by_change: dict[int, list[ProcedureRun]] = {}
    for run in runs:
        runs_by_change.setdefault(run.change_id, []).append(run)
    changes = [(slot, runs_by_change.get(slot.change_id, [])) for slot in slots]
    change_ids = [slot.change.public_id for slot in slots]
    timeline = list(
        AuditEvent.objects.filter(
            object_type__in=["maintenance.maintenancewindow", "changes.changerequest"],
            object_id__in=[str(window.pk), *change_ids],
            created_at__gte=execution.started_at or window.start,
        ).order_by("sequence")[:500]
    )
    sequence, head = chain_head()
    return {
        "execution": execution,
        "window": window,
        "changes": changes,
        "issues": list(execution.issues.select_related("change")),
        "timeline": timeline,
        "generated_at": timezone.now(),
        "chain_sequence": sequence,
        "chain_head": head,
    }


def render_html(execution: MaintenanceExecution, *, for_pdf: bool = False) -> str:
    context = report_context(execution)
    context["for_pdf"] = for_pdf
    return render_to_string("maintenance/report_document.html", context)


def render_pdf(execution: MaintenanceExecution) -> tuple[str, bytes]:
    from weasyprint import HTML

    html = render_html(execution, for_pdf=True)
    pdf = HTML(string=html, base_url=None).write_pdf()
    stamp = (execution.completed_at or timezone.now()).strftime("%Y%m%d-%H%M")
    return f"maintenance-report-window-{execution.window_id}-{stamp}.pdf", pdf
