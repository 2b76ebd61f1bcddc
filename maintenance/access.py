"""Who may see and do what with windows, window approvals and procedure runs: written
once, used by the pages (which buttons to show) and the services (what to allow).

Changes' own rules (who is an operator, who may schedule or carry a change out) live in
``changes.access``; this module adds what windows and runs need on top.
"""

from __future__ import annotations

from django.utils import timezone

from changes import access as change_access
from changes.access import YES, Verdict, is_operator
from changes.models import Approval
from maintenance.models import MaintenanceWindow, ProcedureRun, WindowApproval
from portal.errors import Conflict, NotAllowed, SeparationOfDuties
from portal.roles import Role, has_role, user_roles

# Roles that see every window in full; anyone who may file changes sees the calendar
# too, read-only, with only the changes they may see named.
WINDOW_ROLES = (
    Role.OPERATIONS,
    Role.ENGINEERING,
    Role.SECURITY,
    Role.CTO,
    Role.HEAD_OF_SECURITY,
    Role.COMPLIANCE,
)
EMERGENCY_REQUEST_ROLES = (Role.OPERATIONS, Role.ENGINEERING, Role.SECURITY, Role.REQUESTER)

__all__ = ["is_operator"]


def can_see_windows(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or has_role(user, *WINDOW_ROLES) or change_access.can_create(user))
    )


def may_request_emergency(user) -> bool:
    return user.is_superuser or has_role(user, *EMERGENCY_REQUEST_ROLES)


def window_approver_ids(window: MaintenanceWindow) -> set[int]:
    """Whoever decided one of the changes scheduled in the window (before it ran)."""
    change_ids = window.scheduled_changes.values("change_id")
    return set(
        Approval.objects.filter(
            change_id__in=change_ids, phase=Approval.Phase.PRE, decided_by__isnull=False
        ).values_list("decided_by", flat=True)
    )


def window_actions(user, window: MaintenanceWindow, *, now=None) -> dict[str, Verdict]:
    now = now or timezone.now()
    actions: dict[str, Verdict] = {}
    if not is_operator(user):
        actions["start"] = Verdict(False, "Only operators start maintenance windows.")
    elif user.pk in window_approver_ids(window):
        actions["start"] = Verdict(
            False,
            "You approved a change in this window; someone who was not an approver must start it.",
        )
    elif window.status != MaintenanceWindow.Status.PLANNED:
        actions["start"] = Verdict(
            False, f"The window is {window.get_status_display().lower()}.", 409
        )
    elif not window.is_open(now):
        actions["start"] = Verdict(
            False,
            # In the viewer's zone, named, like every time the portal shows.
            f"The window is open {timezone.localtime(window.start):%Y-%m-%d %H:%M}–"
            f"{timezone.localtime(window.end):%H:%M %Z}; it can only be started while open.",
            409,
        )
    else:
        actions["start"] = YES
    actions["subscribe"] = YES if can_see_windows(user) else Verdict(False, "Not your window.")
    actions["stakeholders"] = (
        YES if is_operator(user) else Verdict(False, "Only operators name stakeholders.")
    )
    return actions


def require_window(user, window: MaintenanceWindow, action: str) -> None:
    verdict = window_actions(user, window)[action]
    if verdict:
        return
    if verdict.status == 409:
        raise Conflict(verdict.reason)
    exc = SeparationOfDuties if "approved a change" in verdict.reason else NotAllowed
    first = window.scheduled_changes.select_related("change").first()
    raise exc(
        verdict.reason,
        user=user,
        action=f"window.{action}_refused",
        obj=first.change if first else window,
        details={"window": window.pk},
    )


# --- window approvals: the same engine as change approvals ------------------------------


def window_sod_refusal(user, approval: WindowApproval) -> str | None:
    window = approval.window
    if window.requested_by_id == user.pk:
        return "You requested this window, so you cannot approve it."
    for other in window.approvals.all():
        if other.pk != approval.pk and other.decided_by_id == user.pk:
            return (
                f"You already decided this window as {other.get_role_display()}; "
                "one person may fill only one role per window."
            )
    return None


def window_closed_reason(approval: WindowApproval) -> str | None:
    window = approval.window
    if window.status != MaintenanceWindow.Status.PENDING_APPROVAL:
        return f"The window is {window.get_status_display().lower()}."
    return None


def window_delegate_refusal(approval: WindowApproval, to_user) -> str | None:
    if not to_user.is_active:
        return "That user is not active."
    if not can_see_windows(to_user):
        return f"{to_user.get_username()} may not see maintenance windows."
    return window_sod_refusal(to_user, approval)


def window_approval_actions(user, approval: WindowApproval, *, now=None) -> dict[str, Verdict]:
    """Decide, delegate and revoke, as ``changes.access.approval_actions`` does."""
    now = now or timezone.now()
    actions: dict[str, Verdict] = {}
    refusal = window_sod_refusal(user, approval)
    holds = approval.role in user_roles(user) or user.is_superuser
    allowed = change_access.may_decide(user, approval, now=now)
    if refusal and (holds or approval.delegated_to_id == user.pk):
        actions["decide"] = Verdict(False, refusal)
    elif not allowed:
        actions["decide"] = Verdict(False, f"Only {approval.get_role_display()} decides this.")
    elif approval.status != WindowApproval.Status.PENDING:
        actions["decide"] = Verdict(False, "This approval is already decided.", 409)
    elif window_closed_reason(approval):
        actions["decide"] = Verdict(False, window_closed_reason(approval) or "", 409)
    else:
        actions["decide"] = YES
    actions["delegate"] = actions["decide"] if holds else Verdict(False, "Not your role.")
    actions["revoke"] = change_access.revoke_verdict(user, approval, now=now)
    # What the page explains to someone who holds the role but may not decide it.
    open_ = approval.status == WindowApproval.Status.PENDING and not window_closed_reason(approval)
    actions["explain"] = Verdict(False, refusal if (refusal and holds and open_) else "")
    return actions


# --- runs ----------------------------------------------------------------------------


def run_actions(user, run: ProcedureRun) -> dict[str, Verdict]:
    """Retry or abandon an interrupted run, tick a checklist step: an operator who did
    not approve the change."""
    change = run.change
    base: Verdict
    if not is_operator(user):
        base = Verdict(False, "Only operators carry out changes.")
    elif user.pk in change_access.approver_ids(change):
        base = Verdict(False, "You approved this change; someone else must carry it out.")
    else:
        base = YES
    actions = {"retry": base, "abandon": base, "step": base}
    if base:
        if run.status != ProcedureRun.Status.INTERRUPTED:
            actions["retry"] = actions["abandon"] = Verdict(
                False, "Only an interrupted run can be retried or abandoned.", 409
            )
        if run.status != ProcedureRun.Status.WAITING:
            actions["step"] = Verdict(False, "This checklist is not waiting for an operator.", 409)
    return actions


def require_run(user, run: ProcedureRun, action: str) -> None:
    verdict = run_actions(user, run)[action]
    if verdict:
        return
    if verdict.status == 409:
        raise Conflict(verdict.reason)
    exc = SeparationOfDuties if "approved this change" in verdict.reason else NotAllowed
    raise exc(
        verdict.reason,
        user=user,
        action=f"run.{action}_refused",
        obj=run.change,
        details={"run": run.pk},
    )
