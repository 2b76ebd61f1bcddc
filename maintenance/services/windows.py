"""Windows: routine ones generated from the policy, emergency ones requested and
approved by CTO and HEAD_OF_SECURITY through the one approval engine, subscriptions."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

from dateutil.rrule import rrulestr
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from changes import access as change_access
from changes.models import Approval, Category, ChangeRequest, State
from changes.services import decisions
from maintenance import access
from maintenance.blackout import blackout_reason
from maintenance.models import MaintenancePolicy, MaintenanceWindow, WindowApproval, WindowType
from portal.audit import audit_record
from portal.errors import Invalid, NotAllowed
from portal.notifications import notify
from portal.roles import Role
from portal.transactions import service


@service(atomic=False)
def windows_generate(*, now: datetime | None = None) -> list[MaintenanceWindow]:
    """Open the routine windows of the next weeks (seed: SUNDAY 01:00-05:00 UTC),
    skipping blackout days. Idempotent: an existing window is never created twice."""
    now = now or timezone.now()
    policy = MaintenancePolicy.objects.get(type=WindowType.ROUTINE)
    until = now + timedelta(weeks=policy.generate_weeks)
    rule = rrulestr(policy.rrule, dtstart=now.replace(minute=0, second=0, microsecond=0))
    created = []
    for start in rule.between(now, until, inc=False):
        if blackout_reason(start.date(), policy):
            continue
        with transaction.atomic():
            window, made = MaintenanceWindow.objects.get_or_create(
                type=WindowType.ROUTINE,
                start=start,
                defaults={
                    "duration_minutes": policy.default_duration_minutes,
                    "timezone": policy.timezone,
                    "notification_offsets": list(policy.notification_offsets),
                    "cutoff_behavior": policy.cutoff_behavior,
                    "title": f"Routine window {start:%a %d %b %Y}",
                },
            )
            if made:
                audit_record(
                    action="window.generated", obj=window, details={"start": start.isoformat()}
                )
                created.append(window)
    return created


# --- emergency windows -----------------------------------------------------------------


def _lock_window(approval: WindowApproval) -> MaintenanceWindow:
    return MaintenanceWindow.objects.select_for_update().get(pk=approval.window_id)


def _attach(approval: WindowApproval, window: MaintenanceWindow) -> None:
    approval.window = window


RULES = decisions.Rules(
    lock_subject=_lock_window,
    attach=_attach,
    sod_refusal=access.window_sod_refusal,
    closed_reason=access.window_closed_reason,
    delegate_refusal=access.window_delegate_refusal,
    audit_prefix="window",
)
decisions.register_kind(WindowApproval, RULES)


@service
def emergency_window_request(
    *,
    by,
    start: datetime,
    duration_minutes: int,
    reason: str,
    for_change: ChangeRequest | None = None,
    now: datetime | None = None,
) -> MaintenanceWindow:
    now = now or timezone.now()
    policy = MaintenancePolicy.objects.get(type=WindowType.EMERGENCY)
    if not access.may_request_emergency(by):
        raise NotAllowed(
            "Your roles do not allow requesting emergency windows.",
            user=by,
            action="window.request_refused",
        )
    if start < now + timedelta(minutes=policy.min_notice_minutes):
        raise Invalid(
            f"An emergency window starts at least {policy.min_notice_minutes} minutes "
            "ahead, so stakeholders can be notified."
        )
    if not 1 <= duration_minutes <= policy.max_duration_minutes:
        raise Invalid(f"An emergency window lasts 1 to {policy.max_duration_minutes} minutes.")
    if not reason.strip():
        raise Invalid("Say why the emergency window is needed.")
    if for_change is not None and not change_access.can_view_change(by, for_change):
        raise Invalid("Ask for a window for a change you may see.")
    window = MaintenanceWindow.objects.create(
        type=WindowType.EMERGENCY,
        start=start,
        duration_minutes=duration_minutes,
        timezone=policy.timezone,
        notification_offsets=list(policy.notification_offsets),
        cutoff_behavior=policy.cutoff_behavior,
        status=MaintenanceWindow.Status.PENDING_APPROVAL,
        title=f"Emergency window {start:%Y-%m-%d %H:%M} UTC",
        reason=reason.strip()[:5000],
        requested_by=by,
        for_change=for_change,
    )
    groups = {g.name: g for g in Group.objects.filter(name__in=policy.approver_roles)}
    approvals = []
    for role in policy.approver_roles:
        approval = WindowApproval.objects.create(window=window, role=role)
        if role in groups:
            assign_perm(WindowApproval.permission, groups[role], approval)
        approvals.append(approval)
    audit_record(
        action="window.requested",
        user=by,
        obj=window,
        details={
            "start": start.isoformat(),
            "minutes": duration_minutes,
            "for_change": for_change.public_id if for_change else None,
        },
    )
    if for_change is not None:
        # The committee may already have approved the urgent change it is for.
        for approval in for_change.approvals.filter(
            phase=Approval.Phase.PRE, status=Approval.Status.APPROVED
        ).select_related("decided_by"):
            _mirror_committee_decision(approval, now=now)
        window.refresh_from_db()
    if window.status == MaintenanceWindow.Status.PENDING_APPROVAL:
        User = get_user_model()
        notify(
            recipients=User.objects.filter(
                groups__name__in=policy.approver_roles, is_active=True
            ).exclude(pk=by.pk),
            subject=f"Emergency window needs approval: {window.title}",
            body=window.reason,
            url=window.get_absolute_url(),
            dedup_key=f"window:{window.pk}:approval",
        )
    return window


def _settle(window: MaintenanceWindow, *, comment: str = "") -> None:
    """Approve or reject the window once its approvals say so."""
    statuses = set(window.approvals.values_list("status", flat=True))
    if WindowApproval.Status.REJECTED in statuses:
        window.reject()
    elif statuses == {WindowApproval.Status.APPROVED}:
        window.approve()
    else:
        return
    window.save(update_fields=["status"])
    audit_record(action=f"window.{window.status.lower()}", obj=window)
    if window.requested_by:
        notify(
            recipients=[window.requested_by],
            subject=f"{window.title}: {window.get_status_display().lower()}",
            body=comment,
            url=window.get_absolute_url(),
            dedup_key=f"window:{window.pk}:decided",
        )


@service
def window_approval_decide(
    *,
    approval: WindowApproval,
    by,
    decision: str,
    comment: str = "",
    version: int | None = None,
    now: datetime | None = None,
) -> WindowApproval:
    """CTO and HEAD_OF_SECURITY decide an emergency window, with the changes' rules."""
    now = now or timezone.now()
    window, locked = decisions.decide(
        model=WindowApproval,
        approval=approval,
        rules=RULES,
        by=by,
        decision=decision,
        comment=comment,
        version=version,
        now=now,
    )
    _settle(window, comment=locked.comments)
    return locked


@service
def window_approval_delegate(*, approval: WindowApproval, by, to_user, days: int = 7, now=None):
    return decisions.delegate(
        model=WindowApproval,
        approval=approval,
        rules=RULES,
        by=by,
        to_user=to_user,
        now=now or timezone.now(),
        days=days,
    )


@service
def window_approval_delegation_revoke(*, approval: WindowApproval, by, now=None):
    return decisions.end_delegation(
        model=WindowApproval, approval=approval, rules=RULES, by=by, now=now or timezone.now()
    )


def _mirror_committee_decision(approval: Approval, *, now: datetime) -> None:
    """An urgent change's Emergency Committee (CTO + HEAD_OF_SECURITY) approving the
    change also approves the emergency window asked for it: one decision, audited as
    both, instead of the same two people approving twice."""
    change = approval.change
    if change.category not in (Category.URGENT, Category.EMERGENCY):
        return
    if approval.status != Approval.Status.APPROVED or approval.decided_by is None:
        return
    pending = WindowApproval.objects.select_for_update().filter(
        window__for_change=change,
        window__status=MaintenanceWindow.Status.PENDING_APPROVAL,
        role=approval.role,
        status=WindowApproval.Status.PENDING,
    )
    for window_approval in pending.select_related("window"):
        window = MaintenanceWindow.objects.select_for_update().get(pk=window_approval.window_id)
        window_approval.window = window
        # The same separation of duties holds for the window as for a direct decision.
        if access.window_sod_refusal(approval.decided_by, window_approval):
            continue
        decisions.record(
            approval=window_approval,
            by=approval.decided_by,
            decision=WindowApproval.Status.APPROVED,
            comment=f"Approved with {change.public_id} ({approval.get_role_display()}).",
            now=now,
        )
        audit_record(
            action="window.approved",
            user=approval.decided_by,
            role=approval.role,
            obj=window,
            details={
                "approval": window_approval.pk,
                "approval_role": window_approval.role,
                "with_change_approval": approval.pk,
                "change": change.public_id,
            },
        )
        _settle(window)


@service
def on_change_approval_decided(approval: Approval, *, by, now) -> None:
    """Listener registered with ``changes.hooks`` (see MaintenanceConfig.ready)."""
    if approval.phase == Approval.Phase.PRE and approval.change.state in (
        State.IN_REVIEW,
        State.APPROVED,
    ):
        _mirror_committee_decision(approval, now=now)


@service
def window_subscribe(*, window: MaintenanceWindow, by, subscribe: bool = True) -> None:
    if subscribe:
        window.subscribers.add(by)
    else:
        window.subscribers.remove(by)
    audit_record(
        action="window.subscribed" if subscribe else "window.unsubscribed", user=by, obj=window
    )


@service
def window_stakeholders_set(
    *,
    window: MaintenanceWindow,
    by,
    usernames: list[str],
    roles: list[str],
    emails: list[str],
    timezone_name: str,
) -> MaintenanceWindow:
    """Seed MaintenanceWindow.notifications.stakeholders: the people, role groups and
    addresses a window's notices go to besides those its changes bring, and the zone
    its times are shown in to addresses. Operators only."""
    if not access.is_operator(by):
        raise NotAllowed(
            "Only operators name a window's stakeholders.",
            user=by,
            action="window.stakeholders_refused",
            obj=window,
        )
    locked = MaintenanceWindow.objects.select_for_update().get(pk=window.pk)
    User = get_user_model()
    users = list(User.objects.filter(username__in=usernames, is_active=True))
    unknown = sorted(set(usernames) - {u.get_username() for u in users})
    if unknown:
        raise Invalid(f"No active user named {', '.join(unknown)}.")
    bad_roles = sorted(set(roles) - set(Role.values))
    if bad_roles:
        raise Invalid(f"Not a role: {', '.join(bad_roles)}.")
    try:
        zoneinfo.ZoneInfo(timezone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"{timezone_name!r} is not a time zone.") from None
    locked.stakeholder_users.set(users)
    locked.stakeholder_roles = sorted(set(roles))
    locked.stakeholder_emails = sorted(set(emails))
    locked.timezone = timezone_name
    locked.save(update_fields=["stakeholder_roles", "stakeholder_emails", "timezone"])
    audit_record(
        action="window.stakeholders_set",
        user=by,
        obj=locked,
        details={
            "users": sorted(u.get_username() for u in users),
            "roles": locked.stakeholder_roles,
            "emails": locked.stakeholder_emails,
            "timezone": timezone_name,
        },
    )
    return locked
