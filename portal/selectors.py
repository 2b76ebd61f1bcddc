"""Reads for the core app's pages."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from portal.models import AuditEvent, Notification


def audit_events(*, action: str = "", username: str = "", object_id: str = "") -> QuerySet:
    qs = AuditEvent.objects.order_by("-sequence")
    if action:
        qs = qs.filter(action__startswith=action)
    if username:
        qs = qs.filter(username__iexact=username)
    if object_id:
        qs = qs.filter(object_id=object_id)
    return qs


def audit_page(*, page_number: str | int, **filters: str) -> Page:
    return Paginator(audit_events(**filters), 50).get_page(page_number)


def notifications_for(user, *, limit: int = 20) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user)[:limit])
