"""Writes behind the calendar page: a user's iCalendar feed token.

The token is the only secret in the feed URL, so a user holds at most one active token;
rotating revokes the old URL at once. Neither the token nor its URL goes into the audit
trail.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.utils import timezone

from maintenance.access import can_see_windows
from maintenance.calendar_selectors import active_feed_token
from maintenance.models import CalendarFeedToken
from portal.audit import audit_record
from portal.errors import NotAllowed
from portal.transactions import service


def _lock_user(user) -> None:
    # Serialises a user's token writes: two tabs rotating at once still leave one token.
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()


def _revoke_all(user, now: datetime) -> list[int]:
    active = CalendarFeedToken.objects.select_for_update().filter(
        user=user, revoked_at__isnull=True
    )
    ids = list(active.values_list("pk", flat=True))
    CalendarFeedToken.objects.filter(pk__in=ids).update(revoked_at=now)
    return ids


@service
def calendar_token_create(*, user) -> CalendarFeedToken:
    """The user's active feed token, made if they have none (a second click is harmless)."""
    if not can_see_windows(user):
        raise NotAllowed(
            "Your roles do not allow a calendar feed.", user=user, action="calendar_feed.refused"
        )
    _lock_user(user)
    token = active_feed_token(user)
    if token is None:
        token = CalendarFeedToken.objects.create(user=user)
        audit_record(action="calendar_feed.created", user=user, obj=token)
    return token


@service
def calendar_token_rotate(*, user, now: datetime | None = None) -> CalendarFeedToken:
    """Issue a new feed token and revoke the active one: the old URL stops working."""
    if not can_see_windows(user):
        raise NotAllowed(
            "Your roles do not allow a calendar feed.", user=user, action="calendar_feed.refused"
        )
    now = now or timezone.now()
    _lock_user(user)
    revoked = _revoke_all(user, now)
    token = CalendarFeedToken.objects.create(user=user)
    audit_record(
        action="calendar_feed.rotated" if revoked else "calendar_feed.created",
        user=user,
        obj=token,
        details={"revoked_tokens": revoked},
    )
    return token


@service
def calendar_token_revoke(*, user, now: datetime | None = None) -> int:
    """Revoke the user's feed token; the old URL answers 404 from now on."""
    now = now or timezone.now()
    _lock_user(user)
    revoked = _revoke_all(user, now)
    if revoked:
        audit_record(
            action="calendar_feed.revoked",
            user=user,
            object_type="maintenance.calendarfeedtoken",
            object_id=",".join(map(str, revoked)),
        )
    return len(revoked)
