"""A user picks the time zone the portal shows and reads times in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.models import AuditEvent, UserPreference

pytestmark = pytest.mark.django_db


def test_it_saves_the_time_zone_and_shows_times_in_it(client, requester, tenant):
    from tests.factories import ChangeRequestFactory

    client.force_login(requester)
    response = client.post(reverse("portal:preferences"), {"timezone": "America/New_York"})
    assert response.status_code == 302
    assert UserPreference.objects.get(user=requester).timezone == "America/New_York"
    assert AuditEvent.objects.filter(action="user.timezone_set").exists()
    start = timezone.now().replace(
        month=1, day=15, hour=12, minute=0, second=0, microsecond=0
    ) + timedelta(days=366)
    change = ChangeRequestFactory(requester=requester, tenants=[tenant], proposed_start=start)
    page = client.get(change.get_absolute_url()).content.decode()
    assert "07:00 EST" in page  # 12:00 UTC in January is 07:00 in New York


def test_an_unknown_time_zone_is_refused_with_a_message(client, requester):
    client.force_login(requester)
    response = client.post(reverse("portal:preferences"), {"timezone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "Choose a time zone" in response.content.decode()
    assert not UserPreference.objects.filter(user=requester, timezone="Mars/Olympus").exists()
