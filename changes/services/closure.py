"""Document results and close: the post-implementation review, the corrective action a
refused ratification needs, and closing the change."""

from __future__ import annotations

from django.utils import timezone

from changes import access, hooks
from changes.models import ChangeRequest, CorrectiveAction, PostImplementationReview
from changes.services.common import lock_change, save_versioned
from portal.audit import audit_record
from portal.errors import Invalid
from portal.roles import Role, has_role
from portal.transactions import service


@service
def review_submit(
    *, change: ChangeRequest, by, outcome: str, notes: str, follow_ups: str = ""
) -> PostImplementationReview:
    if outcome not in PostImplementationReview.Outcome.values:
        raise Invalid("Choose the outcome.")
    if not notes.strip():
        raise Invalid("Write what happened.")
    locked = lock_change(change.pk)
    access.require(by, locked, "review")
    review = PostImplementationReview.objects.create(
        change=locked,
        outcome=outcome,
        notes=notes.strip()[:20_000],
        follow_ups=follow_ups.strip()[:20_000],
        reviewed_by=by,
    )
    audit_record(action="change.reviewed", user=by, obj=locked, details={"outcome": outcome})
    hooks.change_moved(locked)
    return review


@service
def corrective_action_record(
    *,
    change: ChangeRequest,
    by,
    note: str,
    linked_change: ChangeRequest | None = None,
) -> CorrectiveAction:
    """Answer a refused retroactive ratification: a corrective change, or an incident
    note, by HEAD_OF_SECURITY or COMPLIANCE."""
    if not note.strip():
        raise Invalid("Describe the corrective action.")
    locked = lock_change(change.pk)
    access.require(by, locked, "correct")
    if linked_change is not None:
        if linked_change.pk == locked.pk:
            raise Invalid("A change cannot correct itself; link the corrective change.")
        if not access.can_view_change(by, linked_change):
            raise Invalid("Link a change you may see.")
    role = Role.HEAD_OF_SECURITY if has_role(by, Role.HEAD_OF_SECURITY) else Role.COMPLIANCE
    action = CorrectiveAction.objects.create(
        change=locked,
        kind=CorrectiveAction.Kind.LINKED_CHANGE
        if linked_change
        else CorrectiveAction.Kind.INCIDENT_NOTE,
        linked_change=linked_change,
        note=note.strip()[:20_000],
        recorded_by=by,
        recorded_role=role,
    )
    audit_record(
        action="change.corrective_action",
        user=by,
        role=role,
        obj=locked,
        details={
            "kind": action.kind,
            "linked_change": linked_change.public_id if linked_change else None,
            "note": action.note[:2000],
        },
    )
    hooks.change_moved(locked)
    return action


@service
def change_close(*, change: ChangeRequest, by) -> ChangeRequest:
    locked = lock_change(change.pk)
    access.require(by, locked, "close")
    locked.close()
    locked.closed_at = timezone.now()
    save_versioned(locked, ["state", "closed_at"])
    audit_record(action="change.closed", user=by, obj=locked)
    return locked
