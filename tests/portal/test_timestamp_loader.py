"""The PostgreSQL backend reads timestamps with psycopg's C parser (issue 13: Django's
own loader parses each in Python, and the feed reads 9,000): the values are the ones
Django's loader gives, aware and in UTC, whatever offset the server wrote them with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from maintenance.models import MaintenanceWindow
from portal.db.postgresql.base import _TimestamptzLoader

pytestmark = pytest.mark.django_db


def test_a_timestamp_reads_back_aware_in_utc_through_the_c_loader():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT '2026-12-06 01:00:00+00'::timestamptz,"
            " '2026-12-05 20:00:00.123456-05'::timestamptz, NULL::timestamptz"
        )
        plain, offset, missing = cursor.fetchone()
        loader = cursor.cursor.adapters.get_loader(1184, 0)
    assert issubclass(loader, _TimestamptzLoader)
    assert plain == datetime(2026, 12, 6, 1, 0, tzinfo=UTC)
    assert plain.tzinfo is UTC
    assert offset == datetime(2026, 12, 6, 1, 0, 0, 123456, tzinfo=UTC)
    assert offset.utcoffset() == timedelta(0)
    assert missing is None


def test_a_model_keeps_its_times_to_the_microsecond():
    start = timezone.now().replace(microsecond=654321) + timedelta(days=3)
    window = MaintenanceWindow.objects.create(
        type="EMERGENCY", start=start, duration_minutes=60, title="Loader check"
    )
    read = MaintenanceWindow.objects.values_list("start", flat=True).get(pk=window.pk)
    assert read == start and read.tzinfo is UTC
