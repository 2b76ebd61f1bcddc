"""In-app notifications plus e-mail, sent only after the transaction commits."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from portal.models import Notification
from portal.outbox import outbox_enqueue


def notify(
    *, recipients: Iterable, subject: str, body: str = "", url: str = "", dedup_key: str = ""
) -> list[Notification]:
    """Notify each distinct active recipient once; with a dedup key, once ever per key."""
    created: list[Notification] = []
    seen: set[int] = set()
    for user in recipients:
        if user is None or user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        try:
            with transaction.atomic():
                note = Notification.objects.create(
                    recipient=user, subject=subject[:255], body=body, url=url, dedup_key=dedup_key
                )
        except IntegrityError:
            continue  # already notified under this key
        created.append(note)
        if user.email:
            outbox_enqueue(task_name="portal.send_notification_email", args=[note.pk])
    return created


def notification_send_email(*, notification_id: int) -> bool:
    note = Notification.objects.select_related("recipient").filter(pk=notification_id).first()
    if note is None or not note.recipient.email:
        return False
    link = f"\n\n{settings.PORTAL_BASE_URL}{note.url}" if note.url else ""
    send_mail(
        subject=f"[Change Portal] {note.subject}",
        message=f"{note.body}{link}",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[note.recipient.email],
    )
    return True
