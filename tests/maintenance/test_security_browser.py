"""In Chromium, with a real worker: an operator imports an OSV advisory, sees the
vulnerable component on Patch compliance and proposes the security update; Security
approves it; the operator schedules it, runs the window and reads each component's
result in the execution report."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from changes.models import ChangeRequest
from maintenance.models import MaintenanceWindow, WindowType
from maintenance.security.inventory import inventory_refresh
from maintenance.security.models import UpdateResult
from tests.factories import PASSWORD
from tests.maintenance.execution_helpers import calm_calendar, open_now
from tests.maintenance.security_support import (  # noqa: F401  (a fixture)
    copy_environment,
    environment_template,
    executor_for,
    installed_version,
    osv_record,
    write_executables,
)

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


@pytest.fixture
def billing_env(tmp_path, settings, environment_template):  # noqa: F811
    wheels, template = environment_template
    envs = tmp_path / "environments"
    envs.mkdir()
    settings.SECURITY_ENVIRONMENTS_DIR = str(envs)
    settings.SECURITY_WHEEL_DIR = str(wheels)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return copy_environment(template, envs / "billing-api")


def _sign_in(tab: Page, base: str, username: str) -> Page:
    tab.goto(f"{base}/accounts/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    return tab


def test_an_advisory_becomes_an_approved_security_update_that_runs_in_its_window(
    page: Page,
    browser: Browser,
    live_server,
    celery_worker,
    billing_env,
    tmp_path,
    operator,
    security,
    tenant,
):
    calm_calendar()
    row = executor_for(
        "billing-api",
        "python_environment",
        {"environment": "billing-api", "health_command": "python -m tinypkg.health"},
        tenants=[tenant],
    )
    inventory_refresh(executor=row)
    advisory = tmp_path / "GHSA-tiny-0001-abcd.json"
    advisory.write_text(
        json.dumps(
            osv_record(
                "GHSA-tiny-0001-abcd",
                ecosystem="PyPI",
                name="tinypkg",
                fixed="1.1",
                aliases=("CVE-2099-0001",),
            )
        )
    )
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() + timedelta(hours=2),
        duration_minutes=240,
        notification_offsets=[60],
        title="Routine window (security test)",
    )
    base = live_server.url
    ops = _sign_in(page, base, "operator")

    # Import the advisory.
    ops.get_by_role("navigation", name="Main").get_by_role("link", name="Patch compliance").click()
    expect(ops.get_by_role("heading", name="Patch compliance")).to_be_visible()
    ops.get_by_role("link", name="Advisories").click()
    ops.get_by_label("OSV JSON file").set_input_files(str(advisory))
    ops.get_by_role("button", name="Import").click()
    expect(ops.get_by_role("status")).to_contain_text("1 new")

    # The vulnerable component is on Patch compliance; propose its update.
    ops.locator("#main").get_by_role("link", name="Patch compliance").click()
    table = ops.get_by_test_id("compliance-table")
    expect(table).to_contain_text("billing-api")
    expect(table).to_contain_text("GHSA-tiny-0001-abcd")
    expect(table).to_contain_text("High")
    table.get_by_role("button", name="Propose security update").click()
    expect(ops.get_by_test_id("change-state")).to_have_text("Draft")
    expect(ops.get_by_text("billing-api: tinypkg 1.0 → 1.1 (GHSA-tiny-0001-abcd)")).to_be_visible()
    public_id = re.match(r"(CHG-\d{6}):", ops.get_by_role("heading", level=1).inner_text()).group(1)
    ops.get_by_role("button", name="Submit for review").click()
    expect(ops.get_by_test_id("change-state")).to_have_text("In review")

    # Security approves it.
    context = browser.new_context()
    sec = _sign_in(context.new_page(), base, "security")
    sec.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    sec.get_by_test_id("approval-queue").get_by_role("link", name=public_id).click()
    sec.get_by_role("button", name="Approve").click()
    expect(sec.get_by_test_id("decision-result")).to_contain_text("Approved by security")
    context.close()

    # The operator schedules it into the routine window and runs the window.
    ops.reload()
    expect(ops.get_by_test_id("change-state")).to_have_text("Approved")
    ops.get_by_role("link", name="Schedule", exact=True).click()
    expect(ops.get_by_test_id("suggested-window")).to_contain_text("Routine window")
    ops.get_by_role("button", name="Schedule").click()
    expect(ops.get_by_test_id("change-state")).to_have_text("Scheduled")
    ops.get_by_role("link", name="Routine window (security test)").click()
    open_now(window)  # the window's start comes
    ops.reload()
    ops.get_by_role("button", name="Start window").click()
    expect(ops.get_by_test_id("execution-status")).to_have_text("Completed", timeout=180_000)

    # Each component's result is in the report.
    ops.get_by_role("link", name="Execution report").click()
    results = ops.get_by_test_id("security-results")
    expect(results).to_contain_text("billing-api")
    expect(results.get_by_test_id("security-result-status")).to_have_text("SUCCESS")
    expect(results).to_contain_text("1.0 → 1.1")
    stored = UpdateResult.objects.get()
    expect(results).to_contain_text(stored.backup.sha256)
    assert installed_version(billing_env) == "1.1"
    assert ChangeRequest.objects.get().state == "completed"
    assert window.pk == stored.run.execution.window_id


@pytest.fixture
def scripted(tmp_path, settings, tenant):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    state = scripts / "tinypkg.version"
    state.write_text("1.0\n")
    write_executables(
        scripts,
        {
            "inv.sh": f'#!/bin/sh\necho "tinypkg==$(cat {state})"\n',
            "noop.sh": "#!/bin/sh\n",
        },
    )
    settings.MAINTENANCE_SCRIPTS_DIR = str(scripts)
    row = executor_for(
        "reports-worker",
        "script",
        {"ecosystem": "PyPI", "discover": "inv.sh", "backup": "noop.sh", "patch": "noop.sh",
         "verify": "noop.sh", "rollback": "noop.sh"},
        tenants=[tenant],
    )  # fmt: skip
    return row, state


def test_the_security_forms_as_chromium_submits_them(
    page: Page, browser: Browser, live_server, scripted, requester, operator, superuser, tenant
):
    from tests.factories import ChangeRequestFactory, ComponentFactory

    row, state = scripted
    base = live_server.url

    # An operator refreshes the inventory on demand and filters Patch compliance.
    ops = _sign_in(page, base, "operator")
    ops.goto(f"{base}{row.get_absolute_url()}")
    expect(ops.get_by_test_id("installed")).to_contain_text("Not discovered yet")
    ops.get_by_role("button", name="Refresh versions now").click()
    expect(ops.get_by_role("status")).to_contain_text("refreshed")
    expect(ops.get_by_test_id("installed")).to_contain_text("tinypkg")
    state.write_text("1.1\n")
    ops.get_by_role("button", name="Refresh versions now").click()
    expect(ops.get_by_test_id("history")).to_contain_text("1.1")
    ops.goto(f"{base}/security/")
    days = ops.get_by_label("Exposed at least (days)")
    days.fill("-3")
    ops.get_by_role("button", name="Filter").click()  # Chromium refuses to send it: min=0
    assert days.evaluate("el => el.validity.rangeUnderflow")
    days.fill("")
    ops.get_by_label("Severity").select_option(label="Critical")
    ops.get_by_role("button", name="Filter").click()
    expect(ops.get_by_test_id("compliance-table")).to_contain_text("Nothing open")

    # A requester adds a Security update to a draft by hand; a typo is named on the form.
    change = ChangeRequestFactory(
        requester=requester, tenants=[tenant], components=[row.component], type="SECURITY"
    )
    context = browser.new_context()
    req = _sign_in(context.new_page(), base, "requester")
    req.goto(f"{base}{change.get_absolute_url()}")
    req.get_by_role("link", name="Add a procedure").click()
    req.get_by_label("Procedure").select_option(label="Security update")
    req.get_by_role("button", name="Choose").click()
    req.get_by_label("Updates (one per line: component | package | target version)").fill(
        "report-worker | tinypkg | 1.2"
    )
    req.get_by_label("Patches (one per line: package | ID | severity | description)").fill(
        "tinypkg | CVE-2099-0042 | HIGH | Template injection"
    )
    req.get_by_role("button", name="Add procedure").click()
    expect(req.locator(".messages")).to_contain_text("unknown component 'report-worker'")
    req.get_by_label("Updates (one per line: component | package | target version)").fill(
        "reports-worker | tinypkg | 1.2"
    )
    req.get_by_role("button", name="Add procedure").click()
    expect(req.get_by_text("reports-worker: tinypkg 1.1 → 1.2 (CVE-2099-0042)")).to_be_visible()
    context.close()

    # An administrator gives another component its executor in the admin.
    ComponentFactory(name="ledger-api")
    context = browser.new_context()
    admin = _sign_in(context.new_page(), base, "root")
    admin.goto(f"{base}/admin/maintenance/componentexecutor/add/")
    admin.get_by_label("Component").select_option(label="ledger-api")
    admin.get_by_label("Kind").select_option(label="Allow-listed scripts")
    admin.get_by_label("Configuration (JSON)").fill('{"discover": "missing.sh"}')
    admin.get_by_role("button", name="Save", exact=True).click()
    expect(admin.locator(".errornote, .errorlist").first).to_be_visible()
    expect(admin.get_by_text("is not a script in the allow-listed directory")).to_be_visible()
    admin.get_by_label("Configuration (JSON)").fill(
        '{"ecosystem": "PyPI", "discover": "inv.sh", "backup": "noop.sh", "patch": "noop.sh",'
        ' "verify": "noop.sh", "rollback": "noop.sh"}'
    )
    admin.get_by_role("button", name="Save", exact=True).click()
    expect(admin.get_by_text("was added successfully")).to_be_visible()
    context.close()
    from maintenance.security.models import ComponentExecutor

    assert ComponentExecutor.objects.get(component__name="ledger-api").kind == "script"
