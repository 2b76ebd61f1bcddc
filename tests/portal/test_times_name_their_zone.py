"""Every time shown names the zone it is in (issue 8, item 8a).

A Europe/Berlin operator saw 20:03 under a "UTC" heading for a window that opened at
19:03 UTC. Pages show times in the viewer's zone and say which; the stored PDF, read
by people in any zone, states them in UTC.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from pypdf import PdfReader

from changes.models import Category, State
from maintenance.models import (
    MaintenanceExecution,
    MaintenanceWindow,
    ScheduledChange,
    WindowType,
)
from maintenance.reports import render_pdf
from portal.models import UserPreference
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 11, 19, 3, tzinfo=UTC)  # winter: 20:03 CET in Berlin
# A time labelled UTC ("19:03 UTC", "19:03–21:03 UTC"); a zone merely named is fine.
LABELLED_UTC = re.compile(r"\d{2}:\d{2}(:\d{2})?(–\d{2}:\d{2})? UTC")


@pytest.fixture
def finished_window(requester, operator, tenant):
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=START,
        duration_minutes=120,
        notification_offsets=[60],
        title="Sunday evening window",
    )
    change = ChangeRequestFactory(
        title="Rotate TLS certificates",
        requester=requester,
        tenants=[tenant],
        state=State.COMPLETED,
        category=Category.STANDARD,
        risk_level="LOW",
        risk_score=10,
        proposed_start=START,
        window_minutes=30,
    )
    ScheduledChange.objects.create(
        window=window,
        change=change,
        position=1,
        planned_start=START,
        planned_minutes=30,
        scheduled_by=operator,
    )
    MaintenanceExecution.objects.create(
        window=window,
        planned_at=START,
        started_at=START,
        completed_at=START + timedelta(minutes=40),
        status=MaintenanceExecution.Status.COMPLETED,
    )
    return window


@pytest.fixture
def berlin_operator(client, operator):
    UserPreference.objects.update_or_create(user=operator, defaults={"timezone": "Europe/Berlin"})
    client.force_login(operator)
    return client


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_berlin_operator_reads_the_report_in_cet_and_no_local_time_says_utc(
    berlin_operator, finished_window
):
    response = berlin_operator.get(reverse("maintenance:report", args=[finished_window.pk]))

    assert response.status_code == 200
    text = _text(response.content.decode())
    assert "2026-01-11 20:03 CET for 120 minutes" in text
    assert "2026-01-11 20:03:00 CET" in text  # planned and started
    assert "2026-01-11 20:43:00 CET" in text  # completed
    assert "UTC" not in text
    assert "19:03" not in text


def test_the_window_page_and_the_change_page_name_the_viewers_zone(
    berlin_operator, finished_window
):
    window_page = _text(
        berlin_operator.get(
            reverse("maintenance:window", args=[finished_window.pk])
        ).content.decode()
    )
    change = finished_window.scheduled_changes.get().change
    change_page = _text(berlin_operator.get(change.get_absolute_url()).content.decode())

    assert "Sun 11 Jan 2026 20:03 CET" in window_page
    assert "20:03" in change_page and "CET" in change_page
    for page in (window_page, change_page):
        assert not LABELLED_UTC.search(page), LABELLED_UTC.search(page)


def test_the_stored_pdf_states_times_in_utc(finished_window):
    _, pdf, _ = render_pdf(finished_window.execution)

    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    text = re.sub(r"\s+", " ", text)
    assert "2026-01-11 19:03 UTC for 120 minutes" in text
    assert "2026-01-11 19:43:00 UTC" in text
    assert "CET" not in text


def test_the_pdf_is_in_utc_even_when_made_during_a_berlin_request(finished_window):
    from django.utils import timezone

    with timezone.override("Europe/Berlin"):
        _, pdf, _ = render_pdf(finished_window.execution)

    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "19:03 UTC" in re.sub(r"\s+", " ", text)
    assert "CET" not in text
