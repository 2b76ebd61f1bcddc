"""Form and run-page polish a person notices (issue 8, item 12), in Chromium with a real
worker: the new-change form starts at Priority Medium (it pre-selected Critical, which
pages the CTO); a run page shows labelled values, never a Python dict, an ISO stamp with
microseconds or a server path; and "Done" on a checklist step returns to the run the
operator is working through, not the change page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from maintenance.models import ProcedureRun
from tests.factories import PASSWORD, ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    run_in_open_window,
    wait_until,
    with_procedure,
    write_scripts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_the_new_change_form_starts_at_medium_priority(page: Page, live_server, requester):
    _sign_in(page, live_server.url, "requester")
    page.goto(f"{live_server.url}/changes/new/")

    priority = page.get_by_label("Priority")
    expect(priority).to_have_value("MEDIUM")
    assert priority.evaluate("el => el.options[el.selectedIndex].text") == "Medium"


def _no_internals(text: str, *, server_paths: list[str]) -> None:
    assert not re.search(r"\{'[a-z_]+':", text), "a Python dict is shown"
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d{3,6}", text), "a stamp with fractions"
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text), "a raw ISO stamp"
    for path in server_paths:
        assert path not in text, f"the server path {path} is shown"


@pytest.mark.worker
def test_a_checklist_run_reads_in_words_and_done_returns_to_the_run(
    page: Page, live_server, celery_worker, settings, tmp_path, requester, operator, tenant
):
    scripts = write_scripts(tmp_path / "scripts")
    settings.MAINTENANCE_SCRIPTS_DIR = str(scripts)
    calm_calendar()
    component = ComponentFactory(name="claims-api")
    checklist = with_procedure(
        approved_change(requester, tenant, component, title="Fail over the load balancer"),
        requester,
        "manual_checklist",
        steps="Drain node A\nSwitch VIP to node B",
        estimated_minutes="10",
    )
    script = with_procedure(
        approved_change(requester, tenant, component, title="Rotate claims logs"),
        requester,
        "maintenance_script",
        script="succeed.sh",
        arguments="0",
        timeout_seconds="60",
        expect_output="all good",
    )
    run_in_open_window([checklist, script], operator, minutes=120, title="Polish window")
    waiting = wait_until(
        lambda: ProcedureRun.objects.filter(change=checklist, status="WAITING").first(),
        timeout=60,
        what="the checklist to wait for the operator",
    )
    base = live_server.url
    _sign_in(page, base, "operator")
    run_url = f"{base}{waiting.get_absolute_url()}"
    page.goto(run_url)

    # Each step: evidence, then Done; the operator stays on the run.
    for step in ("Drain node A", "Switch VIP to node B"):
        item = page.locator("li", has_text=step).filter(has=page.get_by_role("button", name="Done"))
        item.get_by_label("Evidence").fill(f"{step}: done, checked on the dashboard")
        item.get_by_role("button", name="Done").click()
        expect(page).to_have_url(run_url)
        expect(page.get_by_text(f"Step '{step}' recorded.")).to_be_visible()
    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded", timeout=30_000)
    _no_internals(page.inner_text("main"), server_paths=[str(scripts), str(tmp_path)])

    # The script's run, once it has run: labelled values in words.
    done = wait_until(
        lambda: ProcedureRun.objects.filter(change=script, status="SUCCEEDED").first(),
        timeout=60,
        what="the script to run",
    )
    page.goto(f"{base}{done.get_absolute_url()}")
    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded")
    main = page.inner_text("main")
    assert "all good" in main and "succeed.sh" in main
    _no_internals(main, server_paths=[str(scripts), str(tmp_path)])
