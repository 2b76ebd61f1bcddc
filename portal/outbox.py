"""Transactional outbox: a task is a row written in the caller's transaction.

After commit the row is published at once (short broker timeouts, no retries, so a
web request never hangs); if the broker is down the row stays pending and the relay
(``portal.relay_outbox``, run by beat) publishes it once the broker is back. The
message's task id is the row's id, and every task is safe to deliver twice.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.models import OutboxMessage

logger = logging.getLogger(__name__)


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


def outbox_publish(*, message_id) -> bool:
    """Publish one pending message; False (and the row kept pending) if the broker fails."""
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, published_at__isnull=True)
            .first()
        )
        if message is None:
            return False
        try:
            _send(message)
        except Exception as exc:  # any broker/transport failure leaves the row pending
            message.attempts += 1
            message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            message.save(update_fields=["attempts", "last_error"])
            logger.warning("outbox: %s not published yet: %s", message.task_name, exc)
            return False
        message.attempts += 1
        message.published_at = timezone.now()
        message.last_error = ""
        message.save(update_fields=["attempts", "published_at", "last_error"])
        return True


def outbox_relay(*, limit: int = 200) -> int:
    """Publish pending messages, oldest first; returns how many went out."""
    pending = list(
        OutboxMessage.objects.filter(published_at__isnull=True)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for message_id in pending:
        if outbox_publish(message_id=message_id):
            sent += 1
        else:
            # The broker is still down: the rest would fail the same way.
            break
    return sent
