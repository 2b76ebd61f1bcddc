"""Reads for the maintenance pages."""

from __future__ import annotations

from django.db.models import Prefetch

from changes.models import ChangeRequest
from maintenance.models import (
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceWindow,
    ProcedureRun,
    ScheduledChange,
    StepRun,
    WindowApproval,
)
from portal.roles import Role, has_role

CALENDAR_ROLES = (
    Role.OPERATIONS,
    Role.ENGINEERING,
    Role.SECURITY,
    Role.CTO,
    Role.HEAD_OF_SECURITY,
    Role.COMPLIANCE,
)


def can_see_windows(user) -> bool:
    return user.is_superuser or has_role(user, *CALENDAR_ROLES)


def is_operator(user) -> bool:
    return user.is_superuser or has_role(user, Role.OPERATIONS)


def window_detail(pk: int) -> MaintenanceWindow:
    return MaintenanceWindow.objects.select_related("requested_by").get(pk=pk)


def window_slots(window: MaintenanceWindow) -> list[ScheduledChange]:
    return list(
        ScheduledChange.objects.filter(window=window)
        .select_related("change", "change__requester")
        .order_by("position")
    )


def window_execution(window: MaintenanceWindow) -> MaintenanceExecution | None:
    return (
        MaintenanceExecution.objects.filter(window=window)
        .prefetch_related("issues__change")
        .first()
    )


def execution_runs(execution: MaintenanceExecution | None) -> dict[int, list[ProcedureRun]]:
    if execution is None:
        return {}
    runs = (
        ProcedureRun.objects.filter(execution=execution)
        .select_related("procedure")
        .prefetch_related(Prefetch("steps", queryset=StepRun.objects.order_by("position")))
        .order_by("procedure__position", "attempt")
    )
    grouped: dict[int, list[ProcedureRun]] = {}
    for run in runs:
        grouped.setdefault(run.change_id, []).append(run)
    return grouped


def window_approvals(window: MaintenanceWindow) -> list[WindowApproval]:
    return list(window.approvals.select_related("decided_by").order_by("role"))


def change_procedures(change: ChangeRequest) -> list[ChangeProcedure]:
    return list(change.procedures.order_by("position"))


def change_runs(change: ChangeRequest) -> list[ProcedureRun]:
    return list(
        ProcedureRun.objects.filter(change=change)
        .select_related("procedure")
        .prefetch_related(Prefetch("steps", queryset=StepRun.objects.order_by("position")))
        .order_by("execution_id", "procedure__position", "attempt")
    )


def run_detail(pk: int) -> ProcedureRun:
    return (
        ProcedureRun.objects.select_related("procedure", "change", "execution__window")
        .prefetch_related(Prefetch("steps", queryset=StepRun.objects.order_by("position")))
        .get(pk=pk)
    )
