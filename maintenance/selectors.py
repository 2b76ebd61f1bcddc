"""Reads for the maintenance pages, notices and reports."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q

from changes import access as change_access
from changes.models import Approval, ChangeRequest
from maintenance.models import (
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceWindow,
    ProcedureRun,
    ScheduledChange,
    StepRun,
    WindowApproval,
)
from portal.models import Tenant


def window_detail(pk: int) -> MaintenanceWindow:
    return MaintenanceWindow.objects.select_related("requested_by", "for_change").get(pk=pk)


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
    return list(
        window.approvals.select_related("decided_by", "delegated_to", "delegated_by").order_by(
            "role"
        )
    )


def change_procedures(change: ChangeRequest) -> list[ChangeProcedure]:
    return list(change.procedures.order_by("position"))


def change_runs(change: ChangeRequest) -> list[ProcedureRun]:
    return list(
        ProcedureRun.objects.filter(change=change)
        .select_related("procedure")
        .prefetch_related(Prefetch("steps", queryset=StepRun.objects.order_by("position")))
        .order_by("execution_id", "procedure__position", "attempt")
    )


def change_slot(change: ChangeRequest) -> ScheduledChange | None:
    # A change has one slot at most: no order to ask for.
    try:
        return ScheduledChange.objects.select_related("window").get(change=change)
    except ScheduledChange.DoesNotExist:
        return None


def run_detail(pk: int) -> ProcedureRun:
    return (
        ProcedureRun.objects.select_related("procedure", "change", "execution__window")
        .prefetch_related(Prefetch("steps", queryset=StepRun.objects.order_by("position")))
        .get(pk=pk)
    )


def execution_of(change: ChangeRequest) -> MaintenanceExecution | None:
    return MaintenanceExecution.objects.filter(window__scheduled_changes__change=change).first()


# --- stakeholders -----------------------------------------------------------------------


@dataclass(frozen=True)
class Stakeholders:
    """Who hears about a window: users (derived from its changes, subscribed, or named
    on the window, directly or by role) and e-mail addresses (tenant contacts and the
    addresses named on the window)."""

    users: list
    emails: list[str]


def window_stakeholders(window: MaintenanceWindow) -> Stakeholders:
    User = get_user_model()
    change_ids = list(window.scheduled_changes.values_list("change_id", flat=True))
    ids = set(window.subscribers.values_list("pk", flat=True))
    ids.update(window.stakeholder_users.values_list("pk", flat=True))
    ids.update(
        ChangeRequest.objects.filter(pk__in=change_ids).values_list("requester_id", flat=True)
    )
    ids.update(
        Approval.objects.filter(change_id__in=change_ids)
        .exclude(decided_by=None)
        .values_list("decided_by", flat=True)
    )
    ids.update(ScheduledChange.objects.filter(window=window).values_list("scheduled_by", flat=True))
    if window.requested_by_id:
        ids.add(window.requested_by_id)
    execution = MaintenanceExecution.objects.filter(window=window).first()
    if execution and execution.started_by_id:
        ids.add(execution.started_by_id)
    query = Q(pk__in=ids)
    if window.stakeholder_roles:
        query |= Q(groups__name__in=list(window.stakeholder_roles))
    users = list(User.objects.filter(query, is_active=True).distinct().order_by("pk"))
    contacts = set(
        Tenant.objects.filter(changes__in=change_ids)
        .exclude(contact_email="")
        .values_list("contact_email", flat=True)
    )
    contacts.update(e for e in window.stakeholder_emails or [] if e)
    return Stakeholders(users=users, emails=sorted(contacts))


def visible_changes_in(window: MaintenanceWindow, *, user=None, email: str | None = None):
    """The window's slots, and which of their changes this recipient may know about: a
    user those they may view, a tenant contact those of their tenant."""
    slots = list(window.scheduled_changes.select_related("change").order_by("position"))
    ids = [s.change_id for s in slots]
    if user is not None:
        visible = set(
            change_access.changes_visible_to(user).filter(pk__in=ids).values_list("pk", flat=True)
        )
    elif email:
        visible = set(
            ChangeRequest.objects.filter(pk__in=ids, tenants__contact_email=email).values_list(
                "pk", flat=True
            )
        )
    else:
        visible = set()
    return slots, visible


def notice_body(window: MaintenanceWindow, *, user=None, email: str | None = None) -> str:
    """The changes this recipient may know about are named; the others only counted."""
    slots, visible = visible_changes_in(window, user=user, email=email)
    named = [f"{s.change.public_id} {s.change.title}" for s in slots if s.change_id in visible]
    hidden = len(slots) - len(named)
    lines = named or ["no changes of yours are scheduled in it"]
    if hidden:
        lines.append(f"and {hidden} other change(s)")
    return "Changes: " + "; ".join(lines)
