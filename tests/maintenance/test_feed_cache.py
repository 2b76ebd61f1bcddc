"""The iCalendar feed is rendered once per user and state of the portal (issue 13):
served again from the process's cache, rendered anew as soon as anything it shows
moves through a service, answered 304 to a calendar app that has it already."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from maintenance.calendar_feed import FeedCache, feed_cache
from maintenance.calendar_services import calendar_token_create
from maintenance.models import ScheduledChange
from tests.maintenance.execution_helpers import approved_change, calm_calendar, schedule_all

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    calm_calendar()  # scheduling on any day of the month, holidays included
    feed_cache.clear()
    yield
    feed_cache.clear()


@pytest.fixture
def soon() -> datetime:
    day = timezone.now().date() + timedelta(days=7)
    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


def _url(user) -> str:
    return reverse("calendar:feed", kwargs={"token": calendar_token_create(user=user).token})


def _get(client, url, **headers):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **headers)
    return response, len(ctx.captured_queries)


def test_a_second_fetch_is_the_same_feed_without_rendering_it_again(
    client, operator, cal_window, cal_slot, soon
):
    cal_slot(cal_window(soon), title="Rotate the edge certificates")
    url = _url(operator)

    first, rendered = _get(client, url)
    second, cached = _get(client, url)

    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert b"Rotate the edge certificates" in second.content
    assert cached < rendered
    assert second["ETag"] == first["ETag"]


def test_scheduling_a_change_shows_it_at_the_next_fetch(
    client, operator, requester, tenant, cal_component, cal_window, soon
):
    window = cal_window(soon)
    url = _url(operator)
    assert b"Renew the VPN keys" not in client.get(url).content

    change = approved_change(requester, tenant, cal_component, title="Renew the VPN keys")
    schedule_all([change], window, operator)  # the scheduling service, audited

    assert b"Renew the VPN keys" in client.get(url).content


def test_unscheduling_a_change_removes_it_at_the_next_fetch(
    client, operator, requester, tenant, cal_component, cal_window, soon
):
    from maintenance.services import slot_remove

    window = cal_window(soon)
    change = approved_change(requester, tenant, cal_component, title="Renew the VPN keys")
    schedule_all([change], window, operator)
    url = _url(operator)
    assert b"Renew the VPN keys" in client.get(url).content

    slot_remove(
        change=ScheduledChange.objects.get(change=change).change, by=operator, reason="Moved"
    )

    assert b"Renew the VPN keys" not in client.get(url).content


def test_each_user_gets_their_own_feed(client, operator, outsider, cal_window, cal_slot, soon):
    cal_slot(cal_window(soon), title="Patch Acme's claims database")

    mine = client.get(_url(operator)).content
    theirs = client.get(_url(outsider)).content

    assert b"Patch Acme" in mine
    assert b"Patch Acme" not in theirs
    assert b"Change (restricted)" in theirs


def test_a_calendar_app_holding_the_feed_gets_304(client, operator, cal_window, soon):
    cal_window(soon)
    url = _url(operator)
    etag = client.get(url)["ETag"]

    response, _ = _get(client, url, HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert client.get(url, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200


def test_the_cache_keeps_its_byte_budget_dropping_the_oldest():
    cache = FeedCache(max_bytes=100, seconds=60)
    cache.put(("a",), b"x" * 40, '"a"')
    cache.put(("b",), b"x" * 40, '"b"')
    assert cache.get(("a",)) is not None  # a is now the most recent
    cache.put(("c",), b"x" * 40, '"c"')

    assert cache.get(("b",)) is None
    assert cache.get(("a",)) == (b"x" * 40, '"a"')
    assert cache.get(("c",)) is not None
    cache.put(("huge",), b"x" * 101, '"h"')
    assert cache.get(("huge",)) is None


def test_a_cached_feed_expires():
    cache = FeedCache(max_bytes=1000, seconds=0)
    cache.put(("a",), b"feed", '"a"')
    assert cache.get(("a",)) is None
