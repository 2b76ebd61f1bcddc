"""Buttons a user may not use are not shown, and each role has a home (issue 8, item
11), in Chromium: an operator who approved a change is not offered "Mark implemented"
(and the POST is refused 403 and audited); a requester has a read-only calendar; the
dashboard shows each role its panels.

Before the fix the operator who approved saw "Mark implemented" and then got 403, a
requester got a bare 403 on /calendar/, and the dashboard was three empty boxes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from changes.models import State
from dbops.services import database_target_create
from maintenance.models import (
    MaintenanceExecution,
    MaintenanceWindow,
    ScheduledChange,
    WindowType,
)
from portal.models import AuditEvent
from tests.factories import PASSWORD, ApprovalFactory, ChangeRequestFactory, urgent_change

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My work")).to_be_visible()


def _sign_out(page: Page) -> None:
    page.context.clear_cookies()


@pytest.fixture
def approved_and_started(requester, operator, tenant):
    """A configuration change Operations approved (by ``operator``), now in progress,
    done by hand (no procedures)."""
    change = ChangeRequestFactory(
        title="Raise the connection pool",
        type="CONFIGURATION",
        requester=requester,
        tenants=[tenant],
        state=State.IN_PROGRESS,
        category="STANDARD",
    )
    ApprovalFactory(
        change=change,
        role="OPERATIONS",
        status="APPROVED",
        decided_by=operator,
        decided_at=timezone.now(),
    )
    return change


def test_the_operator_who_approved_is_not_offered_mark_implemented(
    page: Page, live_server, approved_and_started, operator, make_user
):
    change = approved_and_started
    make_user("operator-2", ["OPERATIONS"])
    _sign_in(page, live_server.url, "operator")
    page.goto(f"{live_server.url}{change.get_absolute_url()}")
    expect(page.get_by_role("heading", name=f"{change.public_id}", exact=False)).to_be_visible()
    expect(page.get_by_role("button", name="Mark implemented")).to_have_count(0)

    # Posting it anyway is refused (403) and audited.
    client = Client()
    client.force_login(operator)
    response = client.post(reverse("changes:implemented", args=[change.pk]), {"notes": "done"})
    assert response.status_code == 403
    assert type(change).objects.get(pk=change.pk).state == State.IN_PROGRESS
    denied = AuditEvent.objects.get(action="change.implement_refused")
    assert denied.outcome == "DENIED" and denied.username == "operator"

    # Another operator, who approved nothing, is offered it and uses it.
    _sign_out(page)
    _sign_in(page, live_server.url, "operator-2")
    page.goto(f"{live_server.url}{change.get_absolute_url()}")
    page.get_by_label("What was done (optional)").fill("Pool raised to 200 on both nodes.")
    page.get_by_role("button", name="Mark implemented").click()
    expect(page.get_by_test_id("change-state")).to_have_text("Verifying")


def test_a_requester_reads_the_calendar_without_acting_on_it(
    page: Page, live_server, requester, operator, tenant, other_tenant, make_user
):
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() - timedelta(minutes=1),
        duration_minutes=240,
        notification_offsets=[60],
        title="Routine window (calendar test)",
    )
    mine = ChangeRequestFactory(
        title="My certificate rotation", requester=requester, tenants=[tenant], state="scheduled"
    )
    theirs = ChangeRequestFactory(
        title="Globex private migration",
        requester=make_user("globex-req", ["REQUESTER"], tenants=[other_tenant]),
        tenants=[other_tenant],
        state="scheduled",
    )
    for position, change in enumerate((mine, theirs), start=1):
        ScheduledChange.objects.create(
            window=window,
            change=change,
            position=position,
            planned_start=window.start,
            planned_minutes=30,
            scheduled_by=operator,
        )
    _sign_in(page, live_server.url, "requester")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Calendar").click()

    entry = page.get_by_test_id(f"window-{window.pk}")
    expect(entry).to_contain_text("Routine")
    expect(entry).to_contain_text("My certificate rotation")
    expect(entry).to_contain_text("Change (restricted)")
    expect(entry).not_to_contain_text("Globex private migration")
    entry.get_by_role("link").first.click()
    expect(page.get_by_test_id("window-status")).to_be_visible()
    expect(page.get_by_role("button", name="Start window")).to_have_count(0)
    expect(page.get_by_text("Globex private migration")).to_have_count(0)


def test_an_operators_home_shows_windows_runs_waiting_changes_and_target_health(
    page: Page, live_server, operator, superuser, requester, tenant
):
    soon = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() + timedelta(days=2),
        duration_minutes=240,
        notification_offsets=[60],
        title="Next routine window",
    )
    running = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() - timedelta(minutes=30),
        duration_minutes=240,
        notification_offsets=[60],
        title="Window running now",
        status=MaintenanceWindow.Status.IN_PROGRESS,
    )
    MaintenanceExecution.objects.create(
        window=running,
        planned_at=running.start,
        started_at=running.start,
        status=MaintenanceExecution.Status.IN_PROGRESS,
        procedures_total=4,
        procedures_completed=1,
    )
    waiting = ChangeRequestFactory(
        title="Approved and waiting", requester=requester, tenants=[tenant], state="approved"
    )
    database_target_create(
        by=superuser,
        data={"name": "never-checked-db", "host": "127.0.0.1", "port": 1, "database": "x",
              "user": "monitor", "sslmode": "disable"},
        password="not-shown",
        tenants=[],
    )  # fmt: skip
    _sign_in(page, live_server.url, "operator")

    operations = page.get_by_test_id("panel-operations")
    expect(operations.get_by_role("link", name="Next routine window")).to_have_attribute(
        "href", soon.get_absolute_url()
    )
    expect(operations).to_contain_text("Window running now: 1 of 4 procedures done")
    bar = operations.get_by_role("progressbar", name="Progress of Window running now")
    expect(bar).to_have_attribute("aria-valuenow", "1")
    expect(operations).to_contain_text(f"{waiting.public_id} Approved and waiting")
    expect(page.get_by_test_id("panel-target-health")).to_contain_text(
        "never-checked-db: never checked"
    )
    expect(page.get_by_test_id("panel-approvals")).to_be_visible()  # operators approve too


def test_an_approvers_home_puts_overdue_decisions_first(page: Page, live_server, security, tenant):
    later = ChangeRequestFactory(title="Due next week", tenants=[tenant], state="in_review")
    ApprovalFactory(change=later, role="SECURITY", due_at=timezone.now() + timedelta(days=5))
    late = ChangeRequestFactory(
        title="Overdue since yesterday", tenants=[tenant], state="in_review"
    )
    ApprovalFactory(change=late, role="SECURITY", due_at=timezone.now() - timedelta(days=1))
    _sign_in(page, live_server.url, "security")

    rows = page.get_by_test_id("panel-approvals").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Overdue since yesterday")
    expect(rows.nth(0)).to_contain_text("overdue")
    expect(rows.nth(1)).to_contain_text("Due next week")
    expect(page.get_by_test_id("panel-operations")).to_have_count(0)


def test_compliances_home_shows_reviews_due_and_refused_ratifications(
    page: Page, live_server, compliance, requester, tenant
):
    due = urgent_change(
        state=State.COMPLETED, requester=requester, tenants=[tenant], title="Ratify me"
    )
    refused = urgent_change(
        state=State.COMPLETED, requester=requester, tenants=[tenant], title="Refused hotfix"
    )
    refused.approvals.filter(role="SECURITY").update(status="REJECTED", comments="No WAF review")
    _sign_in(page, live_server.url, "compliance")

    panel = page.get_by_test_id("panel-ratifications")
    expect(panel).to_contain_text(f"{refused.public_id} Refused hotfix")
    expect(panel.locator("table")).to_contain_text(f"{due.public_id} Ratify me")
    expect(page.get_by_test_id("panel-operations")).to_have_count(0)
