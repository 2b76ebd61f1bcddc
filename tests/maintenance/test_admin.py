"""The admin edits policy and freezes; runs and windows are read-only evidence."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from maintenance.models import BlackoutPeriod
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

PAGES = [
    "maintenance_maintenancepolicy",
    "maintenance_blackoutperiod",
    "maintenance_maintenancewindow",
    "maintenance_procedurerun",
    "maintenance_maintenanceexecution",
    "changes_changerequest",
    "changes_approvalrule",
    "changes_riskrule",
    "dbops_databasetarget",
]


@pytest.mark.parametrize("page", PAGES)
def test_the_admin_lists_each_model(client, superuser, page):
    client.force_login(superuser)
    assert client.get(reverse(f"admin:{page}_changelist")).status_code == 200


def test_runs_and_windows_cannot_be_added_by_hand(client, superuser):
    client.force_login(superuser)
    assert client.get(reverse("admin:maintenance_procedurerun_add")).status_code == 403
    assert client.get(reverse("admin:maintenance_maintenancewindow_add")).status_code == 403


def test_a_freeze_added_in_the_admin_is_audited(client, superuser):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:maintenance_blackoutperiod_add"),
        {"start_date": "2027-03-01", "end_date": "2027-03-05", "reason": "Quarter close"},
    )
    assert response.status_code == 302
    period = BlackoutPeriod.objects.get()
    assert period.created_by == superuser and period.start_date == date(2027, 3, 1)
    event = AuditEvent.objects.get(action="admin.maintenance.blackoutperiod.added")
    assert event.username == "root"
    assert event.details["fields"]["reason"] == {"from": None, "to": "Quarter close"}
