"""The execution report ("Document results"): one template for the page and the PDF.

The report reflects the current state of everything in it (a change closed or ratified
after the window shows as such), says when it was generated and the audit chain head
at that moment, and names only the changes its viewer may see, counting the others.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import timezone

from changes import access as change_access
from changes.models import Approval
from maintenance import presentation
from maintenance.models import MaintenanceExecution, ProcedureRun, ScheduledChange, StepRun
from portal.audit import chain_head
from portal.models import AuditEvent


def report_context(execution: MaintenanceExecution, *, viewer=None) -> dict[str, Any]:
    """Everything the report shows. ``viewer=None`` is the complete report (the stored
    PDF, for auditors); a viewer sees only the changes they may see."""
    # The chain head is read first: every change the report shows is at least as new as
    # the head it names, so of two generations the one naming the later head is the
    # fresher (the stored report keeps that one: ``services.reports._store``).
    sequence, head = chain_head()
    window = execution.window
    slots = list(
        ScheduledChange.objects.filter(window=window)
        .select_related("change", "change__requester", "change__review")
        .prefetch_related(
            Prefetch("change__approvals", queryset=Approval.objects.select_related("decided_by")),
            "change__tenants",
            "change__components",
        )
        .order_by("position")
    )
    if viewer is not None:
        visible = set(
            change_access.changes_visible_to(viewer)
            .filter(pk__in=[s.change_id for s in slots])
            .values_list("pk", flat=True)
        )
    else:
        visible = {s.change_id for s in slots}
    withheld = sum(1 for s in slots if s.change_id not in visible)
    slots = [s for s in slots if s.change_id in visible]
    runs = list(
        ProcedureRun.objects.filter(execution=execution, change_id__in=visible)
        .select_related("procedure")
        .prefetch_related(Prefetch("steps", queryset=StepRun.objects.order_by("position")))
        .order_by("change_id", "procedure__position", "attempt")
    )
    runs_by_change: dict[int, list[ProcedureRun]] = {}
    for run in runs:
        # The verification figures the run page shows (dead tuples before and after,
        # index timings, the progress observed), in the report too.
        run.figures = presentation.figures(run.procedure.kind, run.result)
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
    issues = [
        i
        for i in execution.issues.select_related("change")
        if i.change_id is None or i.change_id in visible
    ]
    return {
        "execution": execution,
        "window": window,
        "changes": changes,
        "withheld": withheld,
        "issues": issues,
        "timeline": timeline,
        "generated_at": timezone.now(),
        "chain_sequence": sequence,
        "chain_head": head,
    }


def render_html(execution: MaintenanceExecution, *, viewer=None) -> tuple[str, dict]:
    context = report_context(execution, viewer=viewer)
    context["for_pdf"] = True
    return render_to_string("maintenance/report_document.html", context), context


def render_pdf(execution: MaintenanceExecution, *, viewer=None) -> tuple[str, bytes, dict]:
    from weasyprint import HTML

    html, context = render_html(execution, viewer=viewer)
    pdf = HTML(string=html, base_url=None).write_pdf()
    stamp = context["generated_at"].strftime("%Y%m%d-%H%M%S")
    name = f"maintenance-report-window-{execution.window_id}-{stamp}.pdf"
    return name, pdf, context
