"""In Chromium: an operator proposes a set from the target page and sees each verdict,
an approver approves it, the window runs it with a real worker, and the execution
report shows the diff and the before/after chart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from changes.models import ChangeRequest
from dbops.configuration.models import ConfigurationChangeSet
from maintenance.models import MaintenanceWindow, WindowType
from tests.dbops.configuration_fixtures import (  # noqa: F401
    approver_fixture,
    cluster_target,
    config_rules_fixture,
    show,
)
from tests.factories import PASSWORD
from tests.maintenance.execution_helpers import calm_calendar, open_now

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _sign_in(page: Page, base: str, username: str, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"{username}: {exc}"))
    page.on(
        "console",
        lambda msg: errors.append(f"{username}: {msg.text}") if msg.type == "error" else None,
    )
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_an_operator_proposes_a_set_an_approver_approves_and_the_report_shows_it(
    page: Page,
    browser: Browser,
    live_server,
    celery_worker,
    throwaway_cluster,
    superuser,
    operator,
    approver,
    tenant,
    config_rules,
    tmp_path,
    settings,
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    calm_calendar()
    target = cluster_target(throwaway_cluster, superuser, tenants=[tenant], name="claims-cluster")
    base = live_server.url
    errors: list[str] = []
    _sign_in(page, base, "operator", errors)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Database ops").click()
    page.get_by_role("link", name="claims-cluster").click()
    page.get_by_role("link", name="Propose configuration change").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Propose a configuration change")
    page.get_by_label("Parameter 1").fill("work_mem")
    page.get_by_label("New value 1").fill("16MB")
    page.get_by_label("Parameter 2").fill("max_connections")
    page.get_by_label("New value 2").fill("50")
    page.get_by_role("button", name="Check").click()

    refused = page.get_by_test_id("verdict").filter(has_text="max_connections_range")
    expect(refused).to_contain_text("FAIL")
    expect(refused).to_contain_text(">= 100 and <= 1000")
    expect(page.get_by_test_id("validation")).to_contain_text("refused")
    page.get_by_label("Parameter 2").fill("random_page_cost")
    page.get_by_label("New value 2").fill("1.1")
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_test_id("validation")).to_contain_text("every rule passed")
    expect(page.get_by_test_id("verdict").filter(has_text="TOTAL_MEMORY_LIMIT")).to_contain_text(
        "PASS"
    )
    page.get_by_role("button", name="Propose as a draft change").click()

    change = ChangeRequest.objects.get(type="CONFIGURATION")
    expect(page).to_have_url(f"{base}/changes/{change.pk}/edit/")
    expect(page.get_by_label("Title")).to_have_value(
        "Configure claims-cluster: work_mem, random_page_cost"
    )
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_test_id("change-state")).to_have_text("In review")

    context = browser.new_context()
    decider = context.new_page()
    _sign_in(decider, base, "approver", errors)
    decider.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    decider.get_by_test_id("approval-queue").get_by_role("link", name=change.public_id).click()
    expect(decider.get_by_text("ALTER SYSTEM SET \"work_mem\" = '16MB';")).to_be_visible()
    decider.get_by_role("button", name="Approve").click()
    expect(decider.get_by_test_id("decision-result")).to_contain_text("Approved")
    context.close()

    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() + timedelta(hours=2),
        duration_minutes=240,
        notification_offsets=[60],
        title="Configuration window (test)",
    )
    page.goto(f"{base}{change.get_absolute_url()}")
    page.get_by_role("link", name="Schedule", exact=True).click()
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_test_id("change-state")).to_have_text("Scheduled")
    page.get_by_role("link", name="Configuration window (test)").click()
    open_now(window)  # the window's start comes
    page.reload()
    page.get_by_role("button", name="Start window").click()
    expect(page.get_by_test_id("execution-status")).to_have_text("Completed", timeout=90_000)

    page.get_by_role("link", name="Execution report").click()
    diff = page.get_by_test_id("configuration-diff")
    expect(diff.locator('[data-parameter="work_mem"]')).to_contain_text("4MB")
    expect(diff.locator('[data-parameter="work_mem"]')).to_contain_text("16MB")
    expect(diff.locator('[data-parameter="random_page_cost"]')).to_contain_text("1.1")
    chart = page.get_by_test_id("before-after-chart")
    expect(chart.locator("svg circle")).to_have_count(6)
    expect(page.get_by_test_id("tuning-table")).to_contain_text("Before")
    page.screenshot(path="/tmp/configuration-report.png", full_page=True)
    assert show(throwaway_cluster, "work_mem") == "16MB"
    change_set = ConfigurationChangeSet.objects.get(change=change)
    assert (change_set.target, change_set.status) == (target, "APPLIED")
    assert window.pk and errors == []


def test_an_operator_turns_a_pgtune_suggestion_into_a_draft_in_one_click(
    page: Page, live_server, make_target, operator, tenant, config_rules
):
    target = make_target(
        name="reports-db", tenants=[tenant], memory_bytes=16 * 1024**3, cpu_count=4
    )
    base = live_server.url
    errors: list[str] = []
    _sign_in(page, base, "operator", errors)
    page.goto(f"{base}/dbops/targets/{target.pk}/")
    page.get_by_role("link", name="Propose configuration change").click()

    page.get_by_label("Parameter 1").fill("work_mem")
    page.get_by_label("New value 1").fill("8MB")
    page.get_by_role("button", name="More rows").click()
    expect(page.get_by_label("Parameter 1")).to_have_value("work_mem")
    expect(page.get_by_test_id("set-row")).to_have_count(6)

    page.get_by_role("link", name="PGTune suggestion").click()
    expect(page.get_by_label("RAM")).to_have_value("16384MB")
    page.get_by_label("RAM").fill("16GB")
    page.get_by_label("CPUs").fill("4")
    page.get_by_label("Storage").select_option(label="SSD")
    page.get_by_label("Workload", exact=True).select_option(label="Web application")
    page.get_by_role("button", name="Suggest").click()

    def row(name: str):
        return page.locator(f'[data-testid="suggestion-row"][data-parameter="{name}"]')

    expect(row("shared_buffers")).to_contain_text("4GB")
    expect(row("shared_buffers")).to_contain_text("restart required")
    expect(row("work_mem")).to_contain_text("20560kB")
    expect(row("max_connections")).to_contain_text("PASS max_connections_range")
    expect(page.get_by_test_id("suggestions").get_by_test_id("verdict").first).to_be_visible()
    page.get_by_role("button", name="Propose as a draft change").click()

    change = ChangeRequest.objects.get(type="CONFIGURATION")
    expect(page).to_have_url(f"{base}/changes/{change.pk}/edit/")
    change_set = ConfigurationChangeSet.objects.get(change=change)
    assert change_set.source == "SUGGESTION" and change_set.restart_required
    assert change_set.entries.get(parameter="shared_buffers").new_value == "4GB"
    assert errors == []


def test_an_operator_adds_system_tuning_to_a_change_with_its_adjustments_validated(
    page: Page, live_server, make_target, operator, tenant, config_rules
):
    from tests.factories import ChangeRequestFactory

    target = make_target(name="sorting-db", tenants=[tenant])
    change = ChangeRequestFactory(
        title="Tune work_mem",
        type="CONFIGURATION",
        requester=operator,
        tenants=[tenant],
        components=[target.component],
    )
    base = live_server.url
    errors: list[str] = []
    _sign_in(page, base, "operator", errors)
    page.goto(f"{base}{change.get_absolute_url()}")
    page.get_by_role("link", name="Add a procedure").click()
    page.get_by_label("Procedure").select_option(label="System tuning")
    page.get_by_role("button", name="Choose").click()
    page.get_by_label("Database target").select_option(label="sorting-db")
    page.get_by_label("Resource").select_option(label="Memory")
    page.get_by_label("Judge by").select_option(label="Transactions per second")
    page.get_by_label("Workload").select_option(
        label="Sort-heavy (count DISTINCT over random keys)"
    )
    page.get_by_label("Adjustments (one per line: parameter = value)").fill(
        "work_mem = 32MB\nwork_mem = 32kB"
    )
    page.get_by_role("button", name="Add procedure").click()
    expect(page.get_by_role("alert").first).to_contain_text("Adjustment 2 refused")
    expect(page.get_by_role("alert").first).to_contain_text("outside the valid range")

    page.get_by_label("Adjustments (one per line: parameter = value)").fill(
        "work_mem = 32MB\nwork_mem = 64kB"
    )
    page.get_by_role("button", name="Add procedure").click()
    expect(page.locator("#maintenance")).to_contain_text("System tuning (MEMORY) on sorting-db")
    expect(page.locator("#maintenance")).to_contain_text("work_mem = 32MB; work_mem = 64kB")
    params = change.procedures.get().params
    assert params["adjustments"] == [[["work_mem", "32MB"]], [["work_mem", "64kB"]]]
    # The refused first try answered 400, which Chromium reports as a failed load.
    assert [e for e in errors if "status of 400" not in e] == []
