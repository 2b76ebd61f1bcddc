"""Helpers every change service shares: row locks, the stale-form check, the versioned
save, and the notices that go to a change's people."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db.models import F

from changes import access, hooks
from changes.models import Approval, ChangeRequest
from portal.errors import Conflict
from portal.notifications import notify


def lock_change(change_id: int) -> ChangeRequest:
    return ChangeRequest.objects.select_for_update().get(pk=change_id)


def check_version(change: ChangeRequest, version: int | str | None) -> None:
    """A form carries the version it was loaded at; an older one is refused (409)."""
    if version is None:
        return
    if not str(version).isdecimal() or int(version) != change.version:
        raise Conflict(
            f"{change.public_id} was changed by someone else since you opened this page. "
            "Reload it to see the current version, then try again."
        )


def save_versioned(obj, fields: Iterable[str]) -> None:
    """Save the given fields and bump the version stale forms are checked against.

    The new version is read back with a plain query, not ``refresh_from_db``: the
    instance keeps its state fields untouched (see ``portal.fsm``)."""
    obj.version = F("version") + 1
    obj.save(update_fields=[*fields, "version", *_auto_now(obj)])
    obj.version = type(obj).objects.filter(pk=obj.pk).values_list("version", flat=True).get()
    if isinstance(obj, ChangeRequest):
        hooks.change_moved(obj)


def _auto_now(obj) -> list[str]:
    return [
        f.name
        for f in obj._meta.concrete_fields
        if getattr(f, "auto_now", False) and not getattr(f, "auto_now_add", False)
    ]


def change_stakeholders(change: ChangeRequest) -> list:
    """The requester and everyone who decided one of its approvals."""
    User = get_user_model()
    ids = {change.requester_id}
    ids.update(change.approvals.exclude(decided_by=None).values_list("decided_by", flat=True))
    return list(User.objects.filter(pk__in=ids, is_active=True))


def notify_stakeholders(change: ChangeRequest, *, subject: str, key: str, body: str = "") -> None:
    notify(
        recipients=change_stakeholders(change),
        subject=subject,
        body=body or change.title,
        url=change.get_absolute_url(),
        dedup_key=f"change:{change.pk}:{key}",
    )


def notify_approvers(change: ChangeRequest, approvals: Iterable[Approval]) -> None:
    for approval in approvals:
        recipients = access.users_who_can_see(change, role=approval.role)
        due = f" Due {approval.due_at:%Y-%m-%d %H:%M} UTC." if approval.due_at else ""
        notify(
            recipients=recipients,
            subject=f"Approval needed: {change.public_id} {change.title}",
            body=(
                f"{change.get_category_display()} ({change.review_name}), risk "
                f"{change.risk_level} ({change.risk_score}). Your role: "
                f"{approval.get_role_display()}.{due}"
            ),
            url=approval.get_absolute_url(),
            dedup_key=f"approval:{approval.pk}:requested:{approval.version}",
        )


def notify_pending_approvers_closed(change: ChangeRequest, outcome: str) -> None:
    for approval in change.approvals.filter(status=Approval.Status.PENDING):
        notify(
            recipients=access.users_who_can_see(change, role=approval.role),
            subject=f"No longer needed: {change.public_id} was {outcome}",
            url=change.get_absolute_url(),
            dedup_key=f"approval:{approval.pk}:closed",
        )
