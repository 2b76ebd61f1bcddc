"""What the maintenance app shows on portal and change pages: the calendar in the
navigation, the operator's dashboard, the maintenance panel of a change and, on the
approval page, what will run."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from changes import access as change_access
from changes.models import State
from maintenance import access, selectors
from maintenance.models import MaintenanceExecution, MaintenanceWindow
from maintenance.procedures import registry
from maintenance.security import selectors as security_selectors
from maintenance.services import windows_generate
from portal import registry as portal_registry


def _change_panel(request, change) -> dict:
    actions = change_access.change_actions(request.user, change)
    runs = selectors.change_runs(change)
    return {
        "change": change,
        "procedures": selectors.change_procedures(change),
        "runs": runs,
        "slot": selectors.change_slot(change),
        "actions": actions,
        "run_actions": {run.pk: access.run_actions(request.user, run) for run in runs},
    }


def _what_will_run(request, change) -> dict:
    """The approval page: each procedure with its parameters and pre-checks."""
    items = []
    for item in selectors.change_procedures(change):
        procedure = registry.get(item.kind)
        items.append(
            {
                "item": item,
                "label": procedure.label,
                "summary": procedure.summary(item.params),
                "details": procedure.details(item.params),
                "prechecks": procedure.precheck_names(item.params),
                "impact": procedure.impact(item.params),
                "downtime": procedure.requires_downtime(item.params),
            }
        )
    return {"change": change, "items": items}


def _operator_dashboard(request) -> dict:
    now = timezone.now()
    return {
        "next_windows": list(
            MaintenanceWindow.objects.filter(
                status__in=[
                    MaintenanceWindow.Status.PLANNED,
                    MaintenanceWindow.Status.PENDING_APPROVAL,
                ],
                start__gte=now - timedelta(hours=4),
            ).order_by("start")[:5]
        ),
        "running": list(
            MaintenanceExecution.objects.filter(status=MaintenanceExecution.Status.IN_PROGRESS)
            .select_related("window")
            .order_by("started_at")[:5]
        ),
        "waiting": list(
            change_access.changes_visible_to(request.user)
            .filter(state=State.APPROVED)
            .order_by("proposed_start", "pk")[:10]
        ),
    }


def _seed_windows() -> str:
    return f"Routine maintenance windows opened: {len(windows_generate())} new."


def register() -> None:
    portal_registry.register_demo_seeder(_seed_windows)
    portal_registry.register_nav(
        "Calendar", "calendar:month", allowed=access.can_see_windows, order=30
    )
    portal_registry.register_nav(
        "Patch compliance",
        "maintenance:security:compliance",
        allowed=security_selectors.may_view,
        order=50,
    )
    portal_registry.register_dashboard_panel(
        "operations",
        "maintenance/_dash_operations.html",
        _operator_dashboard,
        order=5,
        allowed=access.is_operator,
    )
    portal_registry.register_change_panel(
        "maintenance", "maintenance/_change_panel.html", _change_panel, order=10
    )
    portal_registry.register_change_panel(
        "what_will_run",
        "maintenance/_what_will_run.html",
        _what_will_run,
        order=10,
        page="approval",
    )
