"""Pre-start notices: at each offset before a window starts, once per (window, offset,
recipient), by e-mail and in-app."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from maintenance.models import MaintenancePolicy, MaintenanceWindow, WindowNotice
from maintenance.selectors import notice_body, window_stakeholders
from portal.models import UserPreference
from portal.notifications import notify
from portal.outbox import outbox_enqueue
from portal.timefmt import zoned
from portal.transactions import service


def _subject(window: MaintenanceWindow, tzname: str) -> str:
    when = zoned(window.start, "UTC")
    if tzname and tzname != "UTC":
        when = f"{zoned(window.start, tzname)} ({when})"
    return (
        f"Maintenance window starts {when} "
        f"({window.get_type_display()}, {window.duration_minutes} min)"
    )


@service(atomic=False)
def window_notices_send(*, now: datetime | None = None) -> int:
    """Send each due pre-start notice exactly once per (window, offset, recipient), even
    when the tick runs twice or late (a late tick still sends before the start)."""
    now = now or timezone.now()
    largest = max(
        [int(o) for p in MaintenancePolicy.objects.all() for o in p.notification_offsets or []]
        + [1440]
    )
    horizon = now + timedelta(minutes=largest)
    sent = 0
    windows = MaintenanceWindow.objects.filter(
        status=MaintenanceWindow.Status.PLANNED, start__gt=now, start__lte=horizon
    )
    for window in windows:
        people = window_stakeholders(window)
        zones = dict(
            UserPreference.objects.filter(user__in=people.users).values_list("user_id", "timezone")
        )
        for offset in sorted(window.notification_offsets or [], reverse=True):
            if now < window.start - timedelta(minutes=int(offset)):
                continue
            recipients = [(f"user:{u.pk}", u, None) for u in people.users] + [
                (f"email:{e}", None, e) for e in people.emails
            ]
            for key, user, email in recipients:
                try:
                    with transaction.atomic():
                        WindowNotice.objects.create(
                            window=window, offset_minutes=int(offset), recipient=key
                        )
                        body = notice_body(window, user=user, email=email)
                        if user is not None:
                            notify(
                                recipients=[user],
                                subject=_subject(window, zones.get(user.pk, "UTC")),
                                body=body,
                                url=window.get_absolute_url(),
                                dedup_key=f"window:{window.pk}:notice:{offset}",
                            )
                        else:
                            # Through the outbox: a mail server that is down delays the
                            # notice instead of losing it. Addresses have no preference:
                            # they read times in the window's own zone.
                            outbox_enqueue(
                                task_name="portal.send_email",
                                args=[
                                    [email],
                                    f"[Change Portal] {_subject(window, window.timezone)}",
                                    body,
                                ],
                            )
                except IntegrityError:
                    continue
                sent += 1
    return sent
