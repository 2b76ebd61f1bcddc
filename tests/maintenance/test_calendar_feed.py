"""The per-user iCalendar feed behind a revocable token."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from maintenance.calendar_feed import PAST, feed_cache, feed_render
from maintenance.calendar_selectors import active_feed_token
from maintenance.calendar_services import (
    calendar_token_create,
    calendar_token_revoke,
    calendar_token_rotate,
)
from maintenance.models import BlackoutPeriod, CalendarFeedToken, MaintenanceWindow
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _feed_url(token: CalendarFeedToken) -> str:
    return reverse("calendar:feed", kwargs={"token": token.token})


def _fetch(client, token) -> Calendar:
    response = client.get(_feed_url(token))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.content)


def _events(cal: Calendar) -> dict[str, object]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


@pytest.fixture
def soon() -> datetime:
    # Midday UTC in a week: inside the feed's range whatever today is.
    day = timezone.now().date() + timedelta(days=7)
    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


def test_the_feed_is_a_calendar_outlook_and_google_accept(client, operator):
    token = calendar_token_create(user=operator)

    cal = _fetch(client, token)

    assert cal["VERSION"] == "2.0"
    assert "Change & Maintenance Portal" in str(cal["PRODID"])
    assert str(cal["X-WR-CALNAME"]) == "Change Portal maintenance"
    assert str(cal["METHOD"]) == "PUBLISH"


def test_each_window_is_an_event_named_by_its_type(client, operator, cal_window, cal_slot, soon):
    routine = cal_window(soon)
    emergency = cal_window(soon + timedelta(days=1), type="EMERGENCY", minutes=90, status="PLANNED")
    change = cal_slot(routine, title="Rotate TLS certificates")

    response = client.get(_feed_url(calendar_token_create(user=operator)))
    events = _events(Calendar.from_ical(response.content))

    event = events[f"window-{routine.pk}@change-portal"]
    assert str(event["SUMMARY"]) == "Routine maintenance window"
    assert event.categories == ["Routine", "Maintenance"]
    assert event.start == routine.start
    assert f"DTSTART:{routine.start:%Y%m%dT%H%M%S}Z" in response.content.decode()
    assert event.end == routine.start + timedelta(minutes=240)
    assert event["DTSTAMP"].dt.utcoffset() == timedelta(0)
    assert str(event["URL"]).endswith(routine.get_absolute_url())
    assert str(event["STATUS"]) == "CONFIRMED"
    assert f"{change.public_id} Rotate TLS certificates (12:00 UTC, 30 min)" in str(
        event["DESCRIPTION"]
    )
    urgent = events[f"window-{emergency.pk}@change-portal"]
    assert str(urgent["SUMMARY"]) == "Emergency maintenance window"
    assert urgent.categories == ["Emergency", "Maintenance"]
    assert urgent.end - urgent.start == timedelta(minutes=90)


def test_a_window_awaiting_approval_is_tentative(client, operator, cal_window, cto, soon):
    window = cal_window(
        soon, type="EMERGENCY", minutes=60, status="PENDING_APPROVAL", requested_by=cto
    )
    event = _events(_fetch(client, calendar_token_create(user=operator)))[
        f"window-{window.pk}@change-portal"
    ]
    assert str(event["STATUS"]) == "TENTATIVE"
    assert str(event["SUMMARY"]) == "Emergency maintenance window (awaiting approval)"


def test_the_feed_names_only_the_changes_its_owner_may_see(
    client, outsider, cal_window, cal_slot, other_tenant, soon
):
    window = cal_window(soon)
    cal_slot(window, title="Patch Acme's claims database")
    cal_slot(window, title="Patch Globex's clinic portal", tenants=[other_tenant])

    response = client.get(_feed_url(calendar_token_create(user=outsider)))
    event = _events(Calendar.from_ical(response.content))[f"window-{window.pk}@change-portal"]

    assert "Patch Acme" not in response.content.decode()
    assert "Change (restricted)" in str(event["DESCRIPTION"])
    assert "Patch Globex's clinic portal" in str(event["DESCRIPTION"])


def test_blackout_days_are_all_day_events_with_their_reason(client, operator):
    first = timezone.now().date() + timedelta(days=10)
    BlackoutPeriod.objects.create(
        start_date=first, end_date=first + timedelta(days=1), reason="Open enrolment"
    )

    events = _events(_fetch(client, calendar_token_create(user=operator)))

    freeze = events[f"blackout-{first:%Y%m%d}@change-portal"]
    assert str(freeze["SUMMARY"]) == "Blackout: Freeze: Open enrolment"
    assert freeze.start == first and not isinstance(freeze.start, datetime)
    assert freeze.end == first + timedelta(days=2)  # DTEND is exclusive
    assert freeze.categories == ["Blackout"]
    summaries = {str(e["SUMMARY"]) for e in events.values()}
    assert "Blackout: End of month (last 3 days)" in summaries


def test_the_uids_stay_the_same_from_one_fetch_to_the_next(client, operator, cal_window, soon):
    cal_window(soon)
    token = calendar_token_create(user=operator)
    assert set(_events(_fetch(client, token))) == set(_events(_fetch(client, token)))


def test_a_revoked_token_answers_404(client, operator):
    token = calendar_token_create(user=operator)
    calendar_token_revoke(user=operator)
    assert client.get(_feed_url(token)).status_code == 404


def test_an_unknown_token_answers_404(client, operator):
    calendar_token_create(user=operator)
    assert client.get("/calendar/feed/not-a-real-token.ics").status_code == 404


def test_rotating_breaks_the_old_url_and_issues_a_new_one(client, operator):
    old = calendar_token_create(user=operator)
    new = calendar_token_rotate(user=operator)

    assert client.get(_feed_url(old)).status_code == 404
    assert client.get(_feed_url(new)).status_code == 200
    assert new.token != old.token
    assert CalendarFeedToken.objects.filter(user=operator, revoked_at=None).count() == 1
    assert AuditEvent.objects.filter(action="calendar_feed.rotated").count() == 1


def test_creating_twice_keeps_the_same_url(operator):
    assert calendar_token_create(user=operator) == calendar_token_create(user=operator)
    assert AuditEvent.objects.filter(action="calendar_feed.created").count() == 1


def test_the_audit_trail_never_holds_the_token(operator):
    token = calendar_token_rotate(user=operator)
    calendar_token_revoke(user=operator)
    for event in AuditEvent.objects.filter(action__startswith="calendar_feed."):
        assert token.token not in str(event.details) + event.object_id


def test_a_token_stops_serving_when_its_owner_loses_the_calendar_roles(client, operator):
    token = calendar_token_create(user=operator)
    operator.groups.clear()
    assert client.get(_feed_url(token)).status_code == 404


def test_a_token_stops_serving_when_its_owner_is_deactivated(client, operator):
    token = calendar_token_create(user=operator)
    operator.is_active = False
    operator.save(update_fields=["is_active"])
    assert client.get(_feed_url(token)).status_code == 404


def test_the_feed_keeps_a_fixed_number_of_queries(client, operator, cal_window, cal_slot, soon):
    token = calendar_token_create(user=operator)

    def count() -> int:
        feed_cache.clear()  # the rendering's queries, not a cached feed's
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(_feed_url(token)).status_code == 200
        return len(ctx.captured_queries)

    cal_slot(cal_window(soon), title="The first change")
    count()  # warm the per-process caches (content types) so both counts compare alike
    few = count()
    for i in range(20):
        cal_slot(cal_window(soon + timedelta(days=i + 1, hours=3)), title=f"Change {i}")
    assert count() <= few


# --- the feed box on the calendar page ---------------------------------------------------


def test_the_calendar_page_offers_to_create_a_feed(client, operator):
    client.force_login(operator)
    page = client.get(reverse("calendar:month")).content.decode()
    assert "Create feed URL" in page
    assert 'data-testid="feed-url"' not in page


def test_creating_the_feed_shows_its_url_and_the_rotate_and_revoke_buttons(client, operator):
    client.force_login(operator)

    response = client.post(reverse("calendar:token"), {"action": "create"}, **HTMX)

    token = active_feed_token(operator)
    body = response.content.decode()
    assert response.status_code == 200
    assert f"http://127.0.0.1:8000{_feed_url(token)}" in body or _feed_url(token) in body
    assert 'value="rotate"' in body and 'value="revoke"' in body
    assert "webcal://" in body
    assert client.get(_feed_url(token)).status_code == 200


def test_rotating_from_the_page_shows_the_new_url(client, operator):
    client.force_login(operator)
    old = calendar_token_create(user=operator)

    response = client.post(reverse("calendar:token"), {"action": "rotate"})

    assert response.status_code == 302
    new = active_feed_token(operator)
    assert new.pk != old.pk
    page = client.get(reverse("calendar:month")).content.decode()
    assert _feed_url(new) in page and _feed_url(old) not in page
    assert "the old one no longer works" in page


def test_revoking_from_the_page_removes_the_url(client, operator):
    client.force_login(operator)
    token = calendar_token_create(user=operator)

    response = client.post(reverse("calendar:token"), {"action": "revoke"}, **HTMX)

    assert response.status_code == 200
    assert "Create feed URL" in response.content.decode()
    assert client.get(_feed_url(token)).status_code == 404


def test_an_unknown_token_action_is_a_clear_400(client, operator):
    client.force_login(operator)
    response = client.post(reverse("calendar:token"), {"action": "explode"})
    assert response.status_code == 400
    assert "create, rotate or revoke" in response.content.decode()


def test_one_users_token_actions_leave_anothers_feed_alone(client, operator, security):
    theirs = calendar_token_create(user=security)
    client.force_login(operator)
    client.post(reverse("calendar:token"), {"action": "revoke"})
    client.post(reverse("calendar:token"), {"action": "rotate"})
    assert client.get(_feed_url(theirs)).status_code == 200


def test_the_feed_ignores_windows_long_past(client, operator, cal_window):
    old = cal_window(datetime.combine(date.today() - timedelta(days=200), datetime.min.time(), UTC))
    events = _events(_fetch(client, calendar_token_create(user=operator)))
    assert f"window-{old.pk}@change-portal" not in events
    assert MaintenanceWindow.objects.filter(pk=old.pk).exists()


def test_a_blackout_run_keeps_its_uid_as_the_feeds_range_moves_through_it(operator):
    # The feed starts 60 days back; a freeze that began before that keeps its first day.
    now = timezone.now()
    start = (now - PAST).date() - timedelta(days=2)
    BlackoutPeriod.objects.create(
        start_date=start, end_date=start + timedelta(days=5), reason="Data centre move"
    )

    uids = {
        str(e["UID"])
        for e in Calendar.from_ical(feed_render(user=operator, now=now)).walk("VEVENT")
        if "Data centre move" in str(e["SUMMARY"])
    }

    assert uids == {f"blackout-{start:%Y%m%d}@change-portal"}
