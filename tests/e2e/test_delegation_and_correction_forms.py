"""The delegation and corrective-action forms as Chromium submits them (issue 8, items 3
and 4): an approver delegates on the approval page, sees the delegation listed, the
delegate approves; an emergency window's approval is delegated on the window page; the
Head of Security records a corrective action for a refused ratification and the
requester can then close the change.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from changes.models import ChangeRequest, CorrectiveAction, State
from changes.services import approval_decide, change_submit, review_submit
from maintenance.models import WindowApproval
from maintenance.services import emergency_window_request
from tests.factories import PASSWORD, ChangeRequestFactory, urgent_change

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _sign_in(page: Page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My work")).to_be_visible()


def test_an_approver_delegates_and_the_delegate_approves(
    page: Page, live_server, requester, security, engineer, tenant
):
    change = change_submit(
        change=ChangeRequestFactory(
            type="SECURITY", priority="LOW", requester=requester, tenants=[tenant]
        ),
        by=requester,
    )
    approval = change.approvals.get(role="SECURITY")
    base = live_server.url
    _sign_in(page, base, "security")
    page.goto(f"{base}{approval.get_absolute_url()}")

    page.get_by_text("Delegate this approval").click()
    page.get_by_label("Delegate to (username)").fill("nobody-at-all")
    page.get_by_label("For (days)").fill("3")
    page.get_by_role("button", name="Delegate").click()
    expect(page.get_by_text("No user with that username.")).to_be_visible()

    page.get_by_text("Delegate this approval").click()
    page.get_by_label("Delegate to (username)").fill("engineer")
    page.get_by_label("For (days)").fill("3")
    page.get_by_role("button", name="Delegate").click()
    expect(page.get_by_text("Delegated to engineer for 3 days.")).to_be_visible()
    delegations = page.get_by_test_id("delegations")
    expect(delegations).to_contain_text("engineer")
    expect(delegations).to_contain_text("security")
    expect(delegations.get_by_role("button", name="Revoke")).to_be_visible()

    _sign_in(page, base, "engineer")
    page.goto(f"{base}{approval.get_absolute_url()}")
    page.get_by_label("Comment").fill("Approved for Security while they are away.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("decision-result")).to_contain_text("Approved by engineer")
    assert ChangeRequest.objects.get(pk=change.pk).state == State.APPROVED


def test_a_cto_delegates_an_emergency_window_approval(
    page: Page, live_server, operator, cto, make_user
):
    make_user("cto-deputy", ["ENGINEERING"])
    window = emergency_window_request(
        by=operator,
        start=timezone.now() + timedelta(minutes=90),
        duration_minutes=60,
        reason="CVE hotfix on the edge",
    )
    base = live_server.url
    _sign_in(page, base, "cto")
    page.goto(f"{base}{window.get_absolute_url()}")

    row = page.get_by_test_id("window-approvals")
    row.get_by_text("Delegate this approval").click()
    row.get_by_label("Delegate to (username)").fill("cto-deputy")
    row.get_by_role("button", name="Delegate").click()

    expect(page.get_by_test_id("window-delegation")).to_contain_text(
        "Delegated to cto-deputy by cto"
    )
    _sign_in(page, base, "cto-deputy")
    page.goto(f"{base}{window.get_absolute_url()}")
    page.get_by_role("button", name="Approve window").click()
    expect(page.get_by_test_id("decision-result")).to_be_visible()
    approval = WindowApproval.objects.get(window=window, role="CTO")
    assert (approval.status, approval.decided_by.username) == ("APPROVED", "cto-deputy")


def test_the_head_of_security_records_a_corrective_action_and_the_change_closes(
    page: Page, live_server, requester, security, ciso, engineer, operator, compliance, tenant
):
    change = urgent_change(
        state=State.COMPLETED,
        requester=requester,
        tenants=[tenant],
        title="Emergency hotfix",
        outcome="SUCCESSFUL",
    )
    review_submit(change=change, by=requester, outcome="SUCCESSFUL", notes="Patched.")
    approval_decide(
        approval=change.approvals.get(role="SECURITY"),
        by=security,
        decision="REJECTED",
        comment="Bypassed the WAF review.",
    )
    for role, user in (("ENGINEERING", engineer), ("OPERATIONS", operator)):
        approval_decide(approval=change.approvals.get(role=role), by=user, decision="APPROVED")
    approval_decide(
        approval=change.approvals.get(role="COMPLIANCE"), by=compliance, decision="APPROVED"
    )
    base = live_server.url
    url = f"{base}{change.get_absolute_url()}"

    _sign_in(page, base, "requester")
    page.goto(url)
    expect(page.get_by_role("button", name="Close change")).to_have_count(0)
    expect(page.get_by_text("a corrective action for its refused ratification")).to_be_visible()

    _sign_in(page, base, "ciso")
    page.goto(url)
    page.get_by_label("Corrective action").fill("Incident INC-4411: WAF rules reviewed.")
    page.get_by_role("button", name="Record corrective action").click()
    expect(page.get_by_test_id("corrective-action")).to_contain_text("INC-4411")

    _sign_in(page, base, "requester")
    page.goto(url)
    page.get_by_role("button", name="Close change").click()
    expect(page.get_by_test_id("change-state")).to_have_text("Closed")
    assert CorrectiveAction.objects.get(change=change).recorded_by == ciso
