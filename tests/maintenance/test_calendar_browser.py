"""The calendar in a real Chromium: htmx navigation, the feed box, no CSP errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from maintenance.models import MaintenanceWindow
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def _sign_in(page: Page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_an_operator_pages_through_months_and_subscribes_to_the_feed(
    page: Page, live_server, transactional_db, operator
):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    next_month = (timezone.now().date().replace(day=1) + timedelta(days=32)).replace(day=10)
    window = MaintenanceWindow.objects.create(
        type="ROUTINE",
        start=datetime(next_month.year, next_month.month, next_month.day, 1, 0, tzinfo=UTC),
        duration_minutes=240,
        notification_offsets=[1440, 60],
        title="Browser window",
    )
    _sign_in(page, live_server, "operator")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Calendar").click()
    expect(page.get_by_test_id("calendar-title")).to_have_text(f"{timezone.now():%B %Y}".strip())
    page.locator("a[rel=next]").click()

    expect(page.get_by_test_id("calendar-title")).to_have_text(f"{next_month:%B %Y}")
    expect(page).to_have_url(
        f"{live_server.url}/calendar/?year={next_month.year}&month={next_month.month}"
    )
    expect(page.get_by_test_id(f"window-{window.pk}")).to_contain_text("01:00–05:00 UTC Routine")

    page.get_by_role("button", name="Create feed URL").click()
    feed = page.get_by_test_id("feed-url")
    expect(feed).to_be_visible()
    # The feed URL names the address the browser reached the portal at (issue 8, item 10).
    expect(feed).to_have_value(f"{live_server.url}/calendar/feed/{_token(operator)}.ics")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke URL").click()
    expect(page.get_by_role("button", name="Create feed URL")).to_be_visible()
    assert errors == []


def _token(user) -> str:
    return user.calendar_tokens.get(revoked_at=None).token
