"""Six-year retention (HIPAA 164.316(b)(2)): changes, approvals, runs and reports are not
deleted before ``RETENTION_YEARS`` after their last activity.

One guard, a ``pre_delete`` receiver, refuses every deletion inside the period however
it is asked for (a service, the admin, a cascade, a queryset), raising ``RetentionRefused``,
which the service boundary, the refusal middleware or ``entry()`` audit as DENIED once the
transaction has rolled back. The admin offers no delete for these models at all. Audit
events are guarded by the database itself (append-only triggers on PostgreSQL and SQLite).
Past the period, ``manage.py archive_records`` writes each change's signed evidence pack
to storage before anything is removed.
"""

from __future__ import annotations

import contextvars
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models.signals import pre_delete
from django.utils import timezone

from changes.models import Approval, ChangeRequest, CorrectiveAction, PostImplementationReview
from maintenance.models import MaintenanceExecution, ProcedureRun, StepRun, WindowApproval
from portal.errors import NotAllowed

# Who is deleting, for the DENIED row: set per request by the MFA middleware, and by
# the retention services for the user they act for.
_actor: contextvars.ContextVar[Any] = contextvars.ContextVar("retention_actor", default=None)


def bind_actor(user) -> contextvars.Token:
    return _actor.set(user)


def unbind_actor(token: contextvars.Token) -> None:
    _actor.reset(token)


class RetentionRefused(NotAllowed):
    """A record still inside its retention period was asked to be deleted (403)."""


def _latest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def last_activity(obj) -> datetime | None:
    """When the record last moved: retention runs from there."""
    if isinstance(obj, ChangeRequest):
        return _latest(obj.created_at, obj.updated_at, obj.closed_at, obj.executed_at)
    if isinstance(obj, (Approval, WindowApproval)):
        return _latest(obj.created_at, obj.decided_at, obj.delegated_at)
    if isinstance(obj, ProcedureRun):
        return _latest(obj.queued_at, obj.started_at, obj.finished_at)
    if isinstance(obj, StepRun):
        return _latest(obj.started_at, obj.finished_at)
    if isinstance(obj, MaintenanceExecution):
        return _latest(obj.planned_at, obj.completed_at, obj.report_generated_at)
    if isinstance(obj, PostImplementationReview):
        return obj.reviewed_at
    if isinstance(obj, CorrectiveAction):
        return obj.recorded_at
    return None


def kept_until(obj) -> datetime:
    """The first moment the record may go. Without any date it is treated as new."""
    anchor = last_activity(obj) or timezone.now()
    years = settings.RETENTION_YEARS
    try:
        return anchor.replace(year=anchor.year + years)
    except ValueError:  # 29 February
        return anchor + timedelta(days=365 * years + years // 4)


def retained(obj, *, now: datetime | None = None) -> bool:
    return (now or timezone.now()) < kept_until(obj)


def _guard(sender, instance, **kwargs) -> None:
    refuse_if_retained(instance)


def refuse_if_retained(instance) -> None:
    if type(instance) not in PROTECTED or not retained(instance):
        return
    until = kept_until(instance)
    label = getattr(instance, "public_id", None) or f"{instance._meta.verbose_name} {instance.pk}"
    raise RetentionRefused(
        f"{label} is kept until {until:%Y-%m-%d} ({settings.RETENTION_YEARS}-year retention) "
        "and cannot be deleted before then.",
        user=_actor.get(),
        action="retention.delete_refused",
        obj=instance,
        details={"kept_until": until.isoformat(), "model": instance._meta.label_lower},
    )


PROTECTED = (
    ChangeRequest,
    Approval,
    WindowApproval,
    PostImplementationReview,
    CorrectiveAction,
    ProcedureRun,
    StepRun,
    MaintenanceExecution,
)


def connect() -> None:
    for model in PROTECTED:
        pre_delete.connect(_guard, sender=model, dispatch_uid=f"retention_{model._meta.label}")
