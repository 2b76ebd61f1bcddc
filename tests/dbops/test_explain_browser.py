"""An operator in a real Chromium explains a slow statement from the query page, then runs
EXPLAIN ANALYZE on it with a value, and is refused for a DELETE."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from portal.models import AuditEvent
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_operator_explains_a_statement_from_the_query_page(
    page: Page, live_server, operator, make_target, slow_orders, statements_db
):
    target = make_target(name="claims-db")
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/dbops/targets/{target.pk}/queries/?threshold=1")

    row = page.locator(f'tr[data-queryid="{slow_orders}"]')
    row.get_by_role("link", name="Explain").click()

    plan = page.get_by_test_id("plan")
    expect(plan).to_contain_text("Plan (EXPLAIN)")
    expect(plan).to_contain_text("Seq Scan")
    expect(plan.locator("[data-costly=true]").first).to_be_visible()
    expect(page.get_by_label("Statement")).to_have_value(
        "SELECT * FROM orders WHERE customer_ref = $1"
    )

    page.get_by_label("Statement").fill("SELECT * FROM orders WHERE customer_ref = 11")
    page.get_by_role("button", name="Explain analyze").click()
    expect(page.get_by_test_id("plan")).to_contain_text("Plan as run (EXPLAIN ANALYZE)")
    expect(page.get_by_test_id("plan")).to_contain_text("actual")
    page.screenshot(path="/tmp/dbops-explain.png", full_page=True)

    page.get_by_label("Statement").fill("DELETE FROM orders WHERE customer_ref = 11")
    page.get_by_role("button", name="Explain analyze").click()
    expect(page.get_by_test_id("explain-error")).to_contain_text("offered for SELECT only")
    with statements_db.connect() as conn:
        assert (
            conn.execute("SELECT count(*) FROM orders WHERE customer_ref = 11").fetchone()[0] == 6
        )
    assert AuditEvent.objects.filter(action="dbops.explain.refused").count() == 1
    assert AuditEvent.objects.filter(action="dbops.explain.analyzed").count() == 1
    # The refusal is a 400 page, which Chromium reports as a failed load; nothing else.
    assert [e for e in errors if "status of 400" not in e] == []
