"""Transactional outbox: a task is a row written in the caller's transaction.

After commit the row is published at once (short broker timeouts, no retries, so a
web request never hangs); if the broker is down the row stays due and the relay
(``portal.relay_outbox``, run by beat) publishes it once the broker is back.

The message's task id is the row's id. A worker claims the row before the task runs and
marks it done after (``portal.celery.OutboxTask``), so the row, not the broker, knows
whether the work happened: a row published but not done within
``OUTBOX_REDELIVER_SECONDS`` is published again, because a broker without persistence
that restarts forgets its queue. A second copy that arrives after the first ran, or
while it runs, is skipped by the claim, so a task runs once however often it is sent.

A task that raised is not done: the failure is counted, the error kept, and the row is
published again after a back-off that doubles each time; after ``OUTBOX_MAX_FAILURES``
failures it is given up (logged, shown on /healthz) instead of retried forever.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from portal.models import OutboxMessage

logger = logging.getLogger(__name__)

# The longest back-off between retries of a task that keeps failing.
MAX_RETRY_SECONDS = 60 * 60


def outbox_enqueue(
    *,
    task_name: str,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    queue: str = "",
) -> OutboxMessage:
    message = OutboxMessage.objects.create(
        task_name=task_name, args=list(args or []), kwargs=dict(kwargs or {}), queue=queue
    )
    transaction.on_commit(lambda: outbox_publish(message_id=message.pk), robust=True)
    return message


def _send(message: OutboxMessage) -> None:
    from portal.celery import app

    options: dict[str, Any] = {"task_id": str(message.pk), "retry": False}
    if message.queue:
        options["queue"] = message.queue
    app.send_task(message.task_name, args=message.args, kwargs=message.kwargs, **options)


def _live() -> Q:
    return Q(done_at__isnull=True, given_up_at__isnull=True)


def outbox_publish(*, message_id) -> bool:
    """Publish one due message; False (and the row kept due) if the broker fails."""
    return _publish(message_id) == "sent"


def _publish(message_id) -> str:
    now = timezone.now()
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(_live(), pk=message_id, due_at__lte=now)
            .first()
        )
        if message is None:
            return "skipped"  # published, claimed or finished meanwhile
        try:
            _send(message)
        except Exception as exc:  # any broker/transport failure leaves the row due
            message.attempts += 1
            message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            message.save(update_fields=["attempts", "last_error"])
            logger.warning("outbox: %s not published yet: %s", message.task_name, exc)
            return "failed"
        message.attempts += 1
        message.published_at = now
        message.due_at = now + timedelta(seconds=settings.OUTBOX_REDELIVER_SECONDS)
        # A claim whose lease ran out belonged to a worker that is gone.
        message.started_at = None
        if not message.failures:
            message.last_error = ""  # the publish error is over; a run's error is kept
        message.save(
            update_fields=["attempts", "published_at", "due_at", "started_at", "last_error"]
        )
        return "sent"


def outbox_relay(*, limit: int = 200) -> int:
    """Publish due messages (never sent, lost by the broker, or to retry); how many went."""
    due = list(
        OutboxMessage.objects.filter(due_at__lte=timezone.now())
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for message_id in due:
        outcome = _publish(message_id)
        if outcome == "sent":
            sent += 1
        elif outcome == "failed":
            # The broker is still down: the rest would fail the same way.
            break
    return sent


# --- the worker's side (called by portal.celery.OutboxTask) ------------------------------


def _message_id(task_id: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(task_id))
    except ValueError:
        return None


def outbox_claim(*, task_id: str | None, lease_seconds: float) -> bool | None:
    """Claim the row of the delivery about to run.

    True: run it. False: a duplicate (done, given up, or running elsewhere within its
    lease): skip it. None: no outbox row (beat's tasks, a direct call): run it untracked.
    """
    message_id = _message_id(task_id)
    if message_id is None:
        return None
    now = timezone.now()
    claimed = (
        OutboxMessage.objects.filter(_live(), pk=message_id)
        .filter(Q(started_at__isnull=True) | Q(due_at__lte=now))
        .update(started_at=now, due_at=now + timedelta(seconds=lease_seconds))
    )
    if claimed:
        return True
    return False if OutboxMessage.objects.filter(pk=message_id).exists() else None


def outbox_mark_done(*, task_id: str | None) -> None:
    message_id = _message_id(task_id)
    if message_id is not None:
        OutboxMessage.objects.filter(pk=message_id, done_at__isnull=True).update(
            done_at=timezone.now(), due_at=None, last_error=""
        )


def outbox_mark_failed(*, task_id: str | None, error: BaseException) -> None:
    """Count a failed run; retry it after a doubling back-off, or give it up."""
    message_id = _message_id(task_id)
    if message_id is None:
        return
    text = f"{type(error).__name__}: {error}"[:2000]
    now = timezone.now()
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update()
            .filter(_live(), pk=message_id)
            .only("pk", "task_name", "failures")
            .first()
        )
        if message is None:
            return
        failures = message.failures + 1
        if failures >= settings.OUTBOX_MAX_FAILURES:
            OutboxMessage.objects.filter(pk=message_id).update(
                failures=failures, last_error=text, started_at=None, due_at=None, given_up_at=now
            )
            logger.error(
                "outbox: %s (%s) failed %d times and is given up: %s",
                message.task_name,
                message_id,
                failures,
                text,
            )
            return
        base = settings.OUTBOX_REDELIVER_SECONDS
        delay = min(base * 2 ** (failures - 1), max(base, MAX_RETRY_SECONDS))
        OutboxMessage.objects.filter(pk=message_id).update(
            failures=failures,
            last_error=text,
            started_at=None,
            due_at=now + timedelta(seconds=delay),
        )
    logger.warning("outbox: %s (%s) failed (%d): %s", message.task_name, message_id, failures, text)


def outbox_release(*, task_id: str | None) -> None:
    """Let the next delivery of a task that asked Celery to retry it claim the row."""
    message_id = _message_id(task_id)
    if message_id is not None:
        # Should the retry's message be lost too, the relay sends it again.
        redeliver = timedelta(seconds=settings.OUTBOX_REDELIVER_SECONDS)
        OutboxMessage.objects.filter(_live(), pk=message_id).update(
            started_at=None, due_at=timezone.now() + redeliver
        )


def outbox_backlog() -> dict[str, Any]:
    """The oldest row not done yet, how many there are, and how many were given up."""
    now = timezone.now()
    undone = OutboxMessage.objects.filter(_live()).aggregate(oldest=Min("created_at"))
    count = OutboxMessage.objects.filter(_live()).count()
    given_up = OutboxMessage.objects.filter(given_up_at__isnull=False).count()
    oldest = undone["oldest"]
    return {
        "undone": count,
        "oldest_undone_age_seconds": (
            round((now - oldest).total_seconds(), 1) if oldest is not None else None
        ),
        "given_up": given_up,
    }
