"""Celery tasks of the core app: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from portal import services
from portal.notifications import notification_send_email
from portal.outbox import outbox_relay


@shared_task(name="portal.relay_outbox", acks_late=True, ignore_result=True)
def relay_outbox() -> int:
    return outbox_relay()


@shared_task(name="portal.send_notification_email", acks_late=True)
def send_notification_email(notification_id: int) -> bool:
    return notification_send_email(notification_id=notification_id)


@shared_task(name="portal.worker_ping", acks_late=True)
def worker_ping(token: str) -> int:
    return services.worker_ping_record(token=token)


@shared_task(name="portal.send_email", acks_late=True)
def send_email(recipients: list[str], subject: str, body: str) -> int:
    from django.core.mail import send_mail

    return send_mail(subject[:255], body, None, recipients)
