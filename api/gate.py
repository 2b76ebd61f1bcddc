"""The deployment gate: may a pipeline deploy this component, for this tenant, now?

Open only while an approved change covering both is in progress in its window, and the
window is open. Otherwise closed, with the reason a person can act on: no change covers
it, the change is not approved yet, its window is not open (not yet, or any more), or the
day is blacked out. Changes are the asker's to see: a pipeline's token sees what its
owner sees; ``manage.py gate`` without a user sees every change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from changes import access
from changes.models import ChangeRequest, State
from maintenance.blackout import blackout_reason
from maintenance.calendar_selectors import routine_policy
from maintenance.models import MaintenanceWindow, WindowType
from portal.models import Component, Tenant

OPEN = "open"
NO_CHANGE = "no_change"
NOT_APPROVED = "not_approved"
WINDOW_CLOSED = "window_closed"
BLACKOUT = "blackout"
REASONS = (NO_CHANGE, NOT_APPROVED, WINDOW_CLOSED, BLACKOUT)

WAITING = (State.DRAFT, State.SUBMITTED, State.IN_REVIEW)
READY = (State.APPROVED, State.SCHEDULED)


@dataclass(frozen=True)
class Answer:
    open: bool
    reason: str
    detail: str
    change: ChangeRequest | None = None
    window: MaintenanceWindow | None = None

    def as_json(self) -> dict:
        window = self.window
        return {
            "open": self.open,
            "reason": self.reason,
            "detail": self.detail,
            "change": self.change.public_id if self.change else None,
            "change_id": self.change.pk if self.change else None,
            "window_id": window.pk if window else None,
            "window_closes_at": window.end.isoformat() if window and self.open else None,
        }


def _window_of(change: ChangeRequest) -> MaintenanceWindow | None:
    slot = getattr(change, "slot", None)
    return slot.window if slot is not None else None


def _fmt(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def answer(*, user, component: Component, tenant: Tenant, now: datetime | None = None) -> Answer:
    now = now or timezone.now()
    changes = access.changes_visible_to(user) if user is not None else ChangeRequest.objects
    covering = list(
        changes.filter(components=component, tenants=tenant)
        .filter(state__in=(*WAITING, *READY, State.IN_PROGRESS, State.VERIFYING))
        .select_related("slot__window")
        .order_by("pk")
        .distinct()
    )
    policy = routine_policy()
    blacked_out = blackout_reason(now.date(), policy) if policy else None
    running = [c for c in covering if c.state == State.IN_PROGRESS]
    for change in running:
        window = _window_of(change)
        if window is None or window.status != MaintenanceWindow.Status.IN_PROGRESS:
            continue
        if not window.is_open(now):
            continue
        if blacked_out and window.type == WindowType.ROUTINE and not change.blackout_exception:
            return Answer(
                False,
                BLACKOUT,
                f"Today is blacked out ({blacked_out}); {change.public_id} has no blackout "
                "exception.",
                change,
                window,
            )
        return Answer(
            True,
            OPEN,
            f"{change.public_id} is in progress in its window until {_fmt(window.end)}.",
            change,
            window,
        )
    if running:
        change = running[0]
        window = _window_of(change)
        when = f" It closed at {_fmt(window.end)}." if window and window.end <= now else ""
        return Answer(
            False,
            WINDOW_CLOSED,
            f"{change.public_id} is in progress but its window is not open.{when}",
            change,
            window,
        )
    done = [c for c in covering if c.state == State.VERIFYING]
    if done:
        change = done[0]
        return Answer(
            False,
            WINDOW_CLOSED,
            f"{change.public_id} has left its window: it was implemented and is being "
            "verified. File a new change to deploy again.",
            change,
            _window_of(change),
        )
    ready = [c for c in covering if c.state in READY]
    if ready:
        change = ready[0]
        window = _window_of(change)
        if window is None:
            detail = f"{change.public_id} is approved but not scheduled into a window yet."
        else:
            detail = (
                f"{change.public_id} is scheduled in the window opening at "
                f"{_fmt(window.start)}; the gate opens when the window runs it."
            )
        return Answer(False, WINDOW_CLOSED, detail, change, window)
    waiting = [c for c in covering if c.state in WAITING]
    if waiting:
        change = waiting[0]
        return Answer(
            False,
            NOT_APPROVED,
            f"{change.public_id} is {change.get_state_display().lower()}; it is not approved.",
            change,
        )
    if blacked_out:
        return Answer(False, BLACKOUT, f"Today is blacked out ({blacked_out}).")
    return Answer(
        False,
        NO_CHANGE,
        f"No change covers {component.name} for {tenant.slug}; file one (a standard change "
        "from the catalog for routine work).",
    )
