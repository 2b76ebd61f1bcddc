"""Seed ``MaintenanceWindow.notifications.stakeholders`` (issue 8, item 17): a window
names stakeholders of its own (users, role groups, e-mail addresses) who get its notices
besides the ones derived from its changes; e-mail addresses read times in the window's
time zone.

Before the fix the stakeholders were only derived from the changes in the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from maintenance.models import MaintenanceExecution, MaintenanceIssue
from maintenance.selectors import window_stakeholders
from maintenance.services import window_notices_send
from maintenance.services.execution import issue_record
from portal.models import Notification, OutboxMessage

pytestmark = pytest.mark.django_db

START = datetime(2027, 6, 13, 1, 0, tzinfo=UTC)  # a Sunday; 03:00 CEST in Berlin
ON_CALL = "oncall@claims-hospital.example"


@pytest.fixture
def window(cal_window, cal_slot, make_user):
    window = cal_window(START, notification_offsets=[60], timezone="Europe/Berlin")
    cal_slot(window, title="Rotate TLS certificates")
    window.stakeholder_users.add(make_user("ward-manager", []))
    window.stakeholder_roles = ["SECURITY"]
    window.stakeholder_emails = [ON_CALL]
    window.save()
    return window


def _tick(django_capture_on_commit_callbacks, at: datetime) -> None:
    from portal.tasks import send_email

    with time_machine.travel(at, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            window_notices_send()
    for message in OutboxMessage.objects.filter(task_name="portal.send_email"):
        send_email.run(*message.args)


def test_named_users_roles_and_addresses_are_stakeholders(window, security, requester, cto):
    people = window_stakeholders(window)

    names = {u.username for u in people.users}
    assert {"ward-manager", "security", "requester", "operator"} <= names
    assert "cto" not in names  # neither named, derived nor subscribed
    assert ON_CALL in people.emails and "contact@acme.example" in people.emails


def test_they_get_the_pre_start_notice(
    window, security, requester, django_capture_on_commit_callbacks
):
    _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=59))

    told = set(
        Notification.objects.filter(dedup_key=f"window:{window.pk}:notice:60").values_list(
            "recipient__username", flat=True
        )
    )
    assert {"ward-manager", "security", "requester"} <= told
    to_on_call = [m for m in mail.outbox if m.to == [ON_CALL]]
    assert len(to_on_call) == 1


def test_an_address_reads_the_time_in_the_windows_zone(window, django_capture_on_commit_callbacks):
    _tick(django_capture_on_commit_callbacks, START - timedelta(minutes=59))

    [message] = [m for m in mail.outbox if m.to == [ON_CALL]]
    assert "2027-06-13 03:00 CEST" in message.subject
    assert "2027-06-13 01:00 UTC" in message.subject
    # An address outside every tenant learns of no change by name.
    assert "Rotate TLS certificates" not in message.body
    assert "1 other change" in message.body


def test_named_stakeholders_hear_of_issues_too(window, security):
    execution = MaintenanceExecution.objects.create(window=window, planned_at=window.start)

    issue_record(execution, MaintenanceIssue.Kind.OTHER, "The VPN to the data centre dropped.")

    told = set(
        Notification.objects.filter(subject__startswith="Maintenance issue").values_list(
            "recipient__username", flat=True
        )
    )
    assert {"ward-manager", "security"} <= told
