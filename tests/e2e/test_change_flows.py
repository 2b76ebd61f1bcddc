"""Change requests as users click through them in Chromium: file, review, decide."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from changes.models import ChangeRequest
from tests.factories import PASSWORD, ComponentFactory, ServiceFactory

pytestmark = pytest.mark.e2e

# Who holds which role; everyone may see both tenants.
PEOPLE = {
    "requester": ["REQUESTER"],
    "security": ["SECURITY"],
    "compliance": ["COMPLIANCE"],
    "engineer": ["ENGINEERING"],
    "operator": ["OPERATIONS"],
}
APPROVER_FOR_ROLE = {
    "SECURITY": "security",
    "COMPLIANCE": "compliance",
    "ENGINEERING": "engineer",
    "OPERATIONS": "operator",
}


@pytest.fixture
def people(make_user, tenant, other_tenant):
    return {
        name: make_user(name, roles, tenants=[tenant, other_tenant])
        for name, roles in PEOPLE.items()
    }


@pytest.fixture
def catalog(transactional_db):
    claims = ServiceFactory(name="Claims API")
    return {
        "components": [
            ComponentFactory(name="edge-proxy", service=claims),
            ComponentFactory(name="primary-postgres", service=claims),
        ],
        "service": claims,
    }


@pytest.fixture
def browser_errors() -> list[str]:
    """Script errors and CSP violations seen in any of the test's pages."""
    return []


@pytest.fixture
def sign_in(page: Page, browser: Browser, live_server, people, browser_errors):
    """Sign a person in through the login page, each in a browser context of their own:
    the requester in pytest-playwright's ``page``, everyone else in a fresh context."""
    contexts = []

    def open_as(username: str) -> Page:
        if username == "requester":
            tab = page
        else:
            context = browser.new_context()
            contexts.append(context)
            tab = context.new_page()
        tab.on("pageerror", lambda exc: browser_errors.append(f"{username}: {exc}"))
        tab.on(
            "console",
            lambda msg: (
                browser_errors.append(f"{username}: {msg.text}") if msg.type == "error" else None
            ),
        )
        tab.goto(f"{live_server.url}/accounts/login/")
        tab.get_by_label("Username").fill(username)
        tab.get_by_label("Password").fill(PASSWORD)
        tab.get_by_role("button", name="Sign in").click()
        expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
        return tab

    yield open_as
    for context in contexts:
        context.close()


def _file_change(page: Page, *, title: str, priority: str, component: str) -> str:
    """Fill in the new-change form as the requester would; returns the public id."""
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Changes", exact=True
    ).click()
    page.get_by_role("link", name="New change request").click()
    expect(page.get_by_role("heading", name="New change request")).to_be_visible()

    start = timezone.localtime(timezone.now() + timedelta(days=14)).replace(hour=2, minute=0)
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill("Rotate the TLS certificates before they expire.")
    page.get_by_label("Type").select_option(label="Security")
    page.get_by_label("Priority").select_option(label=priority)
    page.get_by_label("Components").select_option(label=[component])
    page.get_by_label("Services").select_option(label=["Claims API"])
    page.get_by_label("Tenants").select_option(label=["Acme Health", "Globex Clinics"])
    page.get_by_label("Proposed start").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Window (minutes)").fill("60")
    expect(page.get_by_label("Blackout exception")).not_to_be_checked()
    page.get_by_label("Implementation plan").fill("Deploy the new bundle with the rollout tool.")
    page.get_by_label("Backout plan").fill("Redeploy the previous bundle.")
    page.get_by_label("Verification plan").fill("Check the served certificate's expiry.")
    page.get_by_role("button", name="Submit for review").click()

    expect(page.get_by_test_id("change-state")).to_have_text("In review")
    heading = page.get_by_role("heading", level=1).inner_text()
    public_id = re.match(r"(CHG-\d{6}):", heading).group(1)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{public_id}: {title}")
    return public_id


def _open_from_queue(page: Page, public_id: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    expect(page.get_by_role("heading", name="Approvals waiting for me")).to_be_visible()
    page.get_by_test_id("approval-queue").get_by_role("link", name=public_id).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(public_id)
    # Approvers decide with the plans, risk and impact on the same page.
    expect(page.get_by_text("Backout plan")).to_be_visible()
    expect(page.locator("#risk")).to_contain_text("Risk assessment")


def _decide_in_place(page: Page, button: str, comment: str = "") -> None:
    """Decide and check the result replaced the form without a full page load."""
    page.evaluate("window.__sameDocument = true")
    if comment:
        page.get_by_label("Comment").fill(comment)
    page.get_by_role("button", name=button).click()
    result = page.get_by_test_id("decision-result")
    expect(result).to_be_visible()
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    expect(page.get_by_role("button", name=button)).to_have_count(0)


def _open_change(page: Page, public_id: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Changes", exact=True
    ).click()
    page.get_by_test_id("change-list").get_by_role("link", name=public_id).click()


def test_security_approves_and_compliance_rejects_a_two_tenant_change(
    sign_in, catalog, browser_errors
):
    requester = sign_in("requester")
    public_id = _file_change(
        requester, title="Rotate edge certificates", priority="Low", component="edge-proxy"
    )
    approvals = requester.locator("#approvals tbody tr")
    expect(approvals).to_have_count(2)
    roles = sorted(approvals.nth(i).get_attribute("data-role") for i in range(2))
    assert roles == ["COMPLIANCE", "SECURITY"]
    expect(requester.locator("#approvals")).to_contain_text(
        "More than one tenant impacted: Compliance approves."
    )

    security = sign_in("security")
    _open_from_queue(security, public_id)
    _decide_in_place(security, "Approve")
    expect(security.get_by_test_id("decision-result")).to_contain_text("Approved by security")
    expect(security.locator("#decision")).to_contain_text("The change is now In review")

    compliance = sign_in("compliance")
    _open_from_queue(compliance, public_id)
    _decide_in_place(compliance, "Reject", comment="No evidence of the Globex notice period.")
    expect(compliance.get_by_test_id("decision-result")).to_contain_text(
        "Rejected by compliance: “No evidence of the Globex notice period.”"
    )
    expect(compliance.locator("#decision")).to_contain_text("The change is now Rejected")

    _open_change(requester, public_id)
    expect(requester.get_by_test_id("change-state")).to_have_text("Rejected")
    compliance_row = requester.locator('#approvals tr[data-role="COMPLIANCE"]')
    expect(compliance_row).to_contain_text("Rejected")
    expect(compliance_row).to_contain_text("No evidence of the Globex notice period.")
    expect(requester.get_by_role("button", name="Copy to new draft")).to_be_visible()
    assert ChangeRequest.objects.get().state == "rejected"
    assert browser_errors == []


def test_a_change_approved_by_every_required_role_is_approved(sign_in, catalog, browser_errors):
    requester = sign_in("requester")
    public_id = _file_change(
        requester, title="Harden database TLS", priority="High", component="primary-postgres"
    )
    # High priority, two tenants: high risk, so the Immediate Review of four roles.
    expect(requester.locator("#approvals h2")).to_contain_text("Immediate Review")
    rows = requester.locator("#approvals tbody tr")
    expect(rows).to_have_count(4)
    roles = [rows.nth(i).get_attribute("data-role") for i in range(4)]
    assert sorted(roles) == ["COMPLIANCE", "ENGINEERING", "OPERATIONS", "SECURITY"]

    for role in roles:
        approver = sign_in(APPROVER_FOR_ROLE[role])
        _open_from_queue(approver, public_id)
        _decide_in_place(approver, "Approve")
        expect(approver.get_by_test_id("decision-result")).to_contain_text("Approved")

    _open_change(requester, public_id)
    expect(requester.get_by_test_id("change-state")).to_have_text("Approved")
    for role in roles:
        expect(requester.locator(f'#approvals tr[data-role="{role}"]')).to_contain_text(
            f"Approved {APPROVER_FOR_ROLE[role]}"
        )
    expect(requester.locator(".timeline")).to_contain_text("Change approved")
    assert ChangeRequest.objects.get().state == "approved"
    assert browser_errors == []
