"""Approvers see what will run (issue 8, item 9): in Chromium, the approval page shows
each procedure with its kind, target, tables, script and arguments, and its pre-checks,
before the approver decides.

Before the fix the approval page showed the change's plans but not its procedures.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from changes.models import ChangeRequest, State
from changes.services import change_submit
from maintenance.services import change_procedure_add
from tests.factories import PASSWORD, ChangeRequestFactory
from tests.maintenance.execution_helpers import write_scripts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_approver_reads_each_procedure_and_its_pre_checks_before_approving(
    page: Page,
    live_server,
    settings,
    tmp_path,
    target_db,
    make_target,
    requester,
    operator,
    engineer,
    tenant,
):
    settings.MAINTENANCE_SCRIPTS_DIR = str(write_scripts(tmp_path / "scripts"))
    target_db.run("CREATE TABLE claims (id int PRIMARY KEY)")
    target = make_target(name="claims-db")
    change = ChangeRequestFactory(
        title="Tidy the claims database",
        type="PERFORMANCE",
        priority="LOW",
        requester=requester,
        tenants=[tenant],
        components=[target.component],
    )
    change_procedure_add(
        change=change,
        by=operator,
        kind="db_vacuum",
        params={"target": str(target.pk), "tables": ["public.claims"], "analyze": "on"},
    )
    change_procedure_add(
        change=ChangeRequest.objects.get(pk=change.pk),
        by=requester,
        kind="maintenance_script",
        params={
            "script": "succeed.sh",
            "arguments": "--dry-run 3",
            "timeout_seconds": "60",
            "rollback_script": "undo.sh",
        },
    )
    change = change_submit(change=ChangeRequest.objects.get(pk=change.pk), by=requester)

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("engineer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    queue = page.get_by_test_id("approval-queue")
    queue.get_by_role("link", name=re.compile(change.public_id)).first.click()

    what = page.get_by_test_id("what-will-run")
    expect(what.get_by_role("heading", name="What will run")).to_be_visible()
    vacuum = what.get_by_test_id("procedure-1")
    expect(vacuum).to_contain_text("VACUUM")
    expect(vacuum).to_contain_text("claims-db")
    expect(vacuum).to_contain_text("public.claims")
    expect(vacuum).to_contain_text("VACUUM (ANALYZE)")
    expect(vacuum).to_contain_text("Per-target lock, DISK_SPACE, CONNECTIONS, LOCKS")
    expect(vacuum).to_contain_text("Expected duration")
    script = what.get_by_test_id("procedure-2")
    expect(script).to_contain_text("Maintenance script")
    expect(script).to_contain_text("succeed.sh")
    expect(script).to_contain_text("--dry-run 3")
    expect(script).to_contain_text("undo.sh")
    expect(script).to_contain_text("The script is allow-listed and executable")

    page.get_by_label("Comment").fill("Read both procedures.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("decision-result")).to_contain_text("Approved")
    assert ChangeRequest.objects.get(pk=change.pk).state == State.APPROVED
