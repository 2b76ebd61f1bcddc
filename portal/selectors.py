"""Reads for the core app's pages."""

from __future__ import annotations

from portal.models import Notification


def notifications_for(user, *, limit: int = 20) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user)[:limit])
