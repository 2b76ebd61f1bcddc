"""An operator in a real Chromium: health page, test connection, query page, Propose."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from changes.models import ChangeRequest
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_operator_checks_health_and_proposes_an_index(
    page: Page, live_server, operator, make_target, slow_orders
):
    target = make_target(name="claims-db")
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Database ops").click()
    page.get_by_role("link", name="claims-db").click()
    expect(page.get_by_role("heading", name="claims-db", level=1)).to_be_visible()
    expect(page.get_by_test_id("tables")).to_contain_text("public.orders")
    expect(page.get_by_test_id("blocked")).to_contain_text("None.")

    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_test_id("server-version")).to_contain_text("PostgreSQL 1")
    expect(page.get_by_test_id("statements-state")).to_contain_text("available")

    page.get_by_role("link", name="Query performance").click()
    page.get_by_label("Mean time above (ms)").fill("1")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("top-statements")).to_contain_text(
        "SELECT * FROM orders WHERE customer_ref = $1"
    )
    suggestion = page.get_by_test_id("suggestion").filter(has_text="orders(customer_ref)")
    page.screenshot(path="/tmp/dbops-queries.png", full_page=True)
    suggestion.get_by_role("button", name="Propose").click()

    change = ChangeRequest.objects.get(components=target.component)
    expect(page).to_have_url(f"{live_server.url}/changes/{change.pk}/edit/")
    expect(page.get_by_label("Title")).to_have_value("Add index on orders(customer_ref)")
    assert change.type == "PERFORMANCE"
    assert errors == []
