"""Form and page polish a person notices (issue 8, items 8a and 12), in Chromium:
times name their zone, the change form offers the browser's zone when it differs from
the preference, titles in lists are links, and a long unbroken title wraps instead of
widening the page (it made pages 2,900 px wide)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from changes.models import Category, State
from changes.services import change_submit
from maintenance.models import (
    MaintenanceExecution,
    MaintenanceWindow,
    ScheduledChange,
    WindowType,
)
from portal.models import UserPreference
from tests.factories import PASSWORD, ChangeRequestFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LONG = "x" * 200  # the longest title a change may have, without a break
LONG_WORD = "Claims" + "A" * 294  # 300 characters, no break


def _sign_in(browser: Browser, base: str, username: str, **context_args) -> Page:
    page = browser.new_context(**context_args).new_page()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def test_a_berlin_operator_reads_a_1903_utc_window_as_2003_cet(
    browser: Browser, live_server, operator, requester, tenant
):
    start = datetime(2026, 1, 11, 19, 3, tzinfo=UTC)
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=start,
        duration_minutes=120,
        notification_offsets=[60],
        title="Sunday evening window",
    )
    change = ChangeRequestFactory(
        requester=requester, tenants=[tenant], state=State.COMPLETED, proposed_start=start
    )
    ScheduledChange.objects.create(
        window=window,
        change=change,
        position=1,
        planned_start=start,
        planned_minutes=30,
        scheduled_by=operator,
    )
    MaintenanceExecution.objects.create(
        window=window,
        planned_at=start,
        started_at=start,
        completed_at=start + timedelta(minutes=40),
        status=MaintenanceExecution.Status.COMPLETED,
    )
    UserPreference.objects.create(user=operator, timezone="Europe/Berlin")
    page = _sign_in(browser, live_server.url, "operator")

    page.goto(f"{live_server.url}{reverse('maintenance:report', args=[window.pk])}")

    report = page.locator("article.report")
    expect(report).to_contain_text("2026-01-11 20:03 CET for 120 minutes")
    expect(report).to_contain_text("2026-01-11 20:03:00 CET")
    expect(report).not_to_contain_text("UTC")
    expect(page.locator("footer")).to_contain_text("Times are shown in Europe/Berlin")
    page.context.close()


def test_the_change_form_names_the_zone_and_offers_the_browsers(
    browser: Browser, live_server, requester
):
    page = _sign_in(browser, live_server.url, "requester", timezone_id="Europe/Berlin")
    page.goto(f"{live_server.url}{reverse('changes:create')}")

    expect(page.get_by_text("In your time zone, UTC (UTC).")).to_be_visible()
    offer = page.get_by_test_id("timezone-offer")
    expect(offer).to_be_visible()
    expect(offer).to_contain_text("Your browser's time zone is Europe/Berlin")
    offer.get_by_role("button", name="Use Europe/Berlin").click()

    expect(page.get_by_role("status")).to_have_text("Times are now shown in Europe/Berlin.")
    assert UserPreference.objects.get(user=requester).timezone == "Europe/Berlin"
    page.goto(f"{live_server.url}{reverse('changes:create')}")
    expect(page.get_by_text("In your time zone, Europe/Berlin (CET).")).to_be_visible()
    expect(page.get_by_test_id("timezone-offer")).to_be_hidden()
    page.context.close()


def test_no_offer_when_the_browser_is_in_the_preferred_zone(
    browser: Browser, live_server, requester
):
    UserPreference.objects.create(user=requester, timezone="America/New_York")
    page = _sign_in(browser, live_server.url, "requester", timezone_id="America/New_York")

    page.goto(f"{live_server.url}{reverse('changes:create')}")

    expect(page.get_by_text("In your time zone, America/New_York (EST).")).to_be_visible()
    expect(page.get_by_test_id("timezone-offer")).to_be_hidden()
    page.context.close()


@pytest.fixture
def long_titles(requester, operator, tenant, other_tenant):
    """A change in review and one scheduled in a window, with the longest titles."""
    in_review = ChangeRequestFactory(
        title=LONG,
        description=LONG_WORD,
        requester=requester,
        tenants=[tenant],
        type="SECURITY",
    )
    in_review = change_submit(change=in_review, by=requester)
    start = timezone.now() + timedelta(hours=2)
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=start,
        duration_minutes=240,
        notification_offsets=[60],
        title="W" * 200,
    )
    scheduled = ChangeRequestFactory(
        title="y" * 200,
        requester=requester,
        tenants=[tenant],
        state=State.SCHEDULED,
        category=Category.STANDARD,
    )
    ScheduledChange.objects.create(
        window=window,
        change=scheduled,
        position=1,
        planned_start=start,
        planned_minutes=30,
        scheduled_by=operator,
    )
    return in_review, window


def _page_width(page: Page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def test_long_unbroken_titles_wrap_and_every_list_links_them(
    browser: Browser, live_server, long_titles, security, make_user, tenant
):
    in_review, window = long_titles
    make_user("both", ["REQUESTER", "SECURITY", "OPERATIONS"], tenants=[tenant])
    page = _sign_in(browser, live_server.url, "both", viewport={"width": 1280, "height": 800})
    day = timezone.localtime(window.start).date()
    x, y, w = "x" * 40, "y" * 40, "W" * 40
    pages = {  # name: (path, what the page shows of the long titles)
        "dashboard": (reverse("portal:dashboard"), [x]),
        "changes list": (reverse("changes:list"), [LONG, "y" * 200]),
        "change detail": (in_review.get_absolute_url(), [LONG, LONG_WORD]),
        "approvals queue": (reverse("changes:approvals"), [LONG]),
        "approval page": (
            in_review.approvals.get(role="SECURITY").get_absolute_url(),
            [LONG, LONG_WORD],
        ),
        "calendar month": (
            f"{reverse('calendar:month')}?year={day.year}&month={day.month}",
            [y],
        ),
        "calendar week": (f"{reverse('calendar:week')}?date={day.isoformat()}", [y]),
        "window page": (window.get_absolute_url(), [w, "y" * 200]),
    }
    for name, (path, shown) in pages.items():
        page.goto(f"{live_server.url}{path}")
        for text in shown:
            expect(page.locator("main")).to_contain_text(text)
        scroll, viewport = _page_width(page)
        assert scroll <= viewport, f"{name}: the page is {scroll}px wide in a {viewport}px window"

    # Titles are links wherever changes are listed.
    for name in ("changes list", "approvals queue"):
        page.goto(f"{live_server.url}{pages[name][0]}")
        page.get_by_role("link", name=LONG).first.click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(in_review.public_id)
    for name in ("calendar week", "window page"):
        page.goto(f"{live_server.url}{pages[name][0]}")
        page.get_by_role("link", name="y" * 200).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("y" * 20)
    page.context.close()
