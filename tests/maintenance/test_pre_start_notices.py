"""Pre-start notices: once per (window, offset, recipient), by e-mail and in-app, even
when the beat tick runs twice or late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from maintenance.models import WindowNotice
from maintenance.services import window_notices_send
from portal.models import Notification, OutboxMessage
from portal.notifications import notification_send_email

pytestmark = pytest.mark.django_db

START = datetime(2027, 6, 13, 1, 0, tzinfo=UTC)  # a Sunday, no blackout


@pytest.fixture
def window(cal_window, cal_slot, cto, tenant):
    """A routine window with a change: requester and scheduling operator are stakeholders,
    the CTO subscribed, and the tenant's contact address gets the e-mail."""
    window = cal_window(START, notification_offsets=[1440, 60])
    cal_slot(window, title="Rotate TLS certificates")
    window.subscribers.add(cto)
    return window


def _tick(django_capture_on_commit_callbacks, at: datetime) -> int:
    """One beat tick; then the e-mails it queued in the outbox are handed to the mail
    backend by the task body a worker would run (contacts have no in-app inbox)."""
    from portal.tasks import send_email

    queued = set(OutboxMessage.objects.values_list("pk", flat=True))
    with time_machine.travel(at, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            sent = window_notices_send()
    for message in OutboxMessage.objects.filter(task_name="portal.send_email").exclude(
        pk__in=queued
    ):
        send_email.run(*message.args)
    return sent


def _notices(window, offset: int) -> list[str]:
    return sorted(
        WindowNotice.objects.filter(window=window, offset_minutes=offset).values_list(
            "recipient", flat=True
        )
    )


def _in_app(window, offset: int) -> list[str]:
    return sorted(
        Notification.objects.filter(dedup_key=f"window:{window.pk}:notice:{offset}").values_list(
            "recipient__username", flat=True
        )
    )


def _contact_mails() -> list:
    return [m for m in mail.outbox if m.to == ["contact@acme.example"]]


def test_each_stakeholder_gets_the_day_before_notice_once_when_the_tick_runs_twice(
    window, requester, operator, cto, django_capture_on_commit_callbacks
):
    due = START - timedelta(minutes=1440) + timedelta(minutes=1)

    first = _tick(django_capture_on_commit_callbacks, due)
    second = _tick(django_capture_on_commit_callbacks, due + timedelta(seconds=30))

    recipients = [
        f"user:{requester.pk}",
        f"user:{operator.pk}",
        f"user:{cto.pk}",
        "email:contact@acme.example",
    ]
    assert (first, second) == (4, 0)
    assert _notices(window, 1440) == sorted(recipients)
    assert _notices(window, 60) == []
    assert _in_app(window, 1440) == ["cto", "operator", "requester"]
    assert len(_contact_mails()) == 1
    assert "Rotate TLS certificates" in _contact_mails()[0].body
    assert "2027-06-13 01:00 UTC" in _contact_mails()[0].subject


def test_nothing_goes_out_before_the_first_offset(window, django_capture_on_commit_callbacks):
    sent = _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=1441))

    assert sent == 0
    assert not WindowNotice.objects.exists()
    assert mail.outbox == []


def test_each_offset_goes_out_once_as_the_start_approaches(
    window, django_capture_on_commit_callbacks
):
    day_before = _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=1400))
    again = _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=600))
    hour_before = _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=59))
    twice = _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=58))

    assert (day_before, again, hour_before, twice) == (4, 0, 4, 0)
    assert WindowNotice.objects.filter(window=window).count() == 8
    assert len(_contact_mails()) == 2
    assert Notification.objects.filter(dedup_key__startswith=f"window:{window.pk}:").count() == 6


def test_a_late_tick_sends_both_offsets_once_each_and_never_again(
    window, requester, django_capture_on_commit_callbacks
):
    # The beat was down for a day: the first tick is 30 minutes before the start.
    late = _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=30))
    again = _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=29))
    just_before = _tick(django_capture_on_commit_callbacks, START - timedelta(seconds=5))
    after_start = _tick(django_capture_on_commit_callbacks, START + timedelta(minutes=5))

    assert (late, again, just_before, after_start) == (8, 0, 0, 0)
    assert len(_notices(window, 1440)) == len(_notices(window, 60)) == 4
    assert _in_app(window, 1440) == _in_app(window, 60) == ["cto", "operator", "requester"]
    assert len(_contact_mails()) == 2
    assert Notification.objects.filter(recipient=requester).count() == 2


def test_the_in_app_notices_are_mailed_through_the_outbox(
    window, requester, django_capture_on_commit_callbacks
):
    _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=1439))
    notes = list(Notification.objects.filter(dedup_key__startswith=f"window:{window.pk}:notice"))
    queued = OutboxMessage.objects.filter(task_name="portal.send_notification_email")
    assert sorted(m.args[0] for m in queued) == sorted(n.pk for n in notes)

    # What the worker does with each message: the user's e-mail, with the window's link.
    mail.outbox.clear()
    for note in notes:
        assert notification_send_email(notification_id=note.pk)
    to_requester = [m for m in mail.outbox if m.to == [requester.email]]
    assert len(to_requester) == 1
    assert (
        "[Change Portal] Maintenance window starts 2027-06-13 01:00 UTC" in to_requester[0].subject
    )
    assert window.get_absolute_url() in to_requester[0].body


def test_a_window_awaiting_approval_sends_no_notices(
    cal_window, cto, django_capture_on_commit_callbacks
):
    window = cal_window(
        START, type="EMERGENCY", minutes=60, status="PENDING_APPROVAL", requested_by=cto
    )

    sent = _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=30))

    assert sent == 0
    assert not WindowNotice.objects.filter(window=window).exists()


def test_a_notice_names_only_the_changes_its_recipient_may_know_about(
    window, cal_slot, other_tenant, requester, make_user, django_capture_on_commit_callbacks
):
    other_tenant.contact_email = "it@globex.example"
    other_tenant.save()
    globex_requester = make_user("globex-req", ["REQUESTER"], tenants=[other_tenant])
    cal_slot(
        window,
        title="Globex private migration",
        tenants=[other_tenant],
        requester_=globex_requester,
    )
    _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=59))
    acme = [m for m in mail.outbox if m.to == ["contact@acme.example"]]
    globex = [m for m in mail.outbox if m.to == ["it@globex.example"]]
    assert acme and globex
    assert "Rotate TLS certificates" in acme[0].body
    assert "Globex private migration" not in acme[0].body
    assert "1 other change" in acme[0].body
    assert "Globex private migration" in globex[0].body
    assert "Rotate TLS certificates" not in globex[0].body
    body = Notification.objects.filter(recipient=requester, dedup_key__startswith="window:")
    assert "Globex private migration" not in body.first().body
