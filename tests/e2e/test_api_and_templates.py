"""The standard change catalog's forms and the API tokens section of Preferences as
Chromium submits them: an engineer proposes a template and Security approves it on its
page; a requester files a change from it and sees it pre-approved; an edit proposes a
new version that Security rejects; its author retires it; an operator creates a token,
sees it once, uses it against /api/ and revokes it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from api.models import ApiToken
from changes.models import ChangeRequest, StandardTemplate, TemplateStatus
from changes.services import template_approval_decide, template_propose
from portal.models import AuditEvent
from tests.factories import PASSWORD, ComponentFactory, ServiceFactory
from tests.maintenance.execution_helpers import calm_calendar

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TEMPLATE = {
    "name": "Rotate TLS certificates",
    "title_pattern": "Rotate TLS certificates on {component} for {tenant}",
    "description": "Replace the expiring certificates on the edge.",
    "type": "SECURITY",
    "implementation_plan": "Deploy the new bundle with the rollout tool.",
    "backout_plan": "Redeploy the previous bundle.",
    "verification_plan": "Check the served certificate's expiry date.",
    "max_window_minutes": 60,
    "risk_ceiling": 40,
}


def _sign_in(page: Page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My work")).to_be_visible()


@pytest.fixture
def component(db):
    calm_calendar()
    return ComponentFactory(name="edge-proxy", service=ServiceFactory(name="Claims API"))


@pytest.fixture
def approved_template(engineer, security, tenant, component) -> StandardTemplate:
    version = template_propose(
        by=engineer, data=dict(TEMPLATE), components=[component], tenants=[tenant]
    )
    template_approval_decide(
        approval=version.approvals.get(role="SECURITY"), by=security, decision="APPROVED"
    )
    return version.template


def _version(page: Page, number: int):
    return page.get_by_test_id(f"template-version-{number}")


def test_an_engineer_proposes_a_template_and_security_approves_it_on_its_page(
    page: Page, live_server, engineer, security, tenant, component
):
    base = live_server.url
    _sign_in(page, base, "engineer")
    page.goto(f"{base}/templates/")
    page.get_by_role("link", name="Propose a template").click()
    page.get_by_label("Name").fill(TEMPLATE["name"])
    page.get_by_label("Title pattern").fill(TEMPLATE["title_pattern"])
    page.get_by_label("Description").fill(TEMPLATE["description"])
    page.get_by_label("Type").select_option("SECURITY")
    page.get_by_label("Implementation plan").fill(TEMPLATE["implementation_plan"])
    page.get_by_label("Backout plan").fill(TEMPLATE["backout_plan"])
    page.get_by_label("Verification plan").fill(TEMPLATE["verification_plan"])
    page.get_by_label("Components it covers").select_option(label="edge-proxy")
    page.get_by_label("Tenants it covers").select_option(label=tenant.name)
    page.get_by_label("Maximum window (minutes)").fill("60")
    page.get_by_label("Risk ceiling (score)").fill("40")
    page.get_by_role("button", name="Propose for approval").click()

    template = StandardTemplate.objects.get(name=TEMPLATE["name"])
    expect(page.get_by_text("proposed; the roles the policy names approve it next")).to_be_visible()
    expect(_version(page, 1).get_by_test_id("version-status")).to_have_text("Awaiting approval")

    _sign_in(page, base, "security")
    page.goto(f"{base}{template.get_absolute_url()}")
    page.get_by_label("Your comment as Security").fill("Routine and reversible.")
    page.get_by_role("button", name="Approve version 1").click()

    expect(page.get_by_text("Your decision on the template is recorded.")).to_be_visible()
    expect(_version(page, 1).get_by_test_id("version-status")).to_have_text("Approved")
    expect(_version(page, 1).get_by_test_id("template-approvals")).to_contain_text(
        "Routine and reversible."
    )
    assert template.versions.get().status == TemplateStatus.APPROVED


def test_a_requester_files_a_change_from_an_approved_template_and_sees_it_pre_approved(
    page: Page, live_server, requester, tenant, component, approved_template
):
    base = live_server.url
    _sign_in(page, base, "requester")
    page.goto(f"{base}/templates/")
    page.get_by_role("link", name=TEMPLATE["name"]).click()
    page.get_by_role("link", name="File a change from it").click()
    page.get_by_label("Components").select_option(label="edge-proxy")
    page.get_by_label("Tenants").select_option(label=tenant.name)
    start = timezone.localtime(timezone.now() + timedelta(days=10)).replace(hour=2, minute=0)
    page.get_by_label("Proposed start").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Window (minutes)").fill("30")
    page.get_by_label("Priority").select_option("LOW")
    page.get_by_role("button", name="File standard change").click()

    change = ChangeRequest.objects.get(requester=requester)
    expect(page).to_have_url(f"{base}{change.get_absolute_url()}")
    expect(page.get_by_text("Standard (pre-approved)").first).to_be_visible()
    assert change.title == f"Rotate TLS certificates on edge-proxy for {tenant.name}"
    assert (change.state, change.pre_approved) == ("approved", True)


def test_editing_a_template_proposes_a_new_version_that_security_rejects(
    page: Page, live_server, engineer, security, approved_template
):
    base = live_server.url
    _sign_in(page, base, "engineer")
    page.goto(f"{base}{approved_template.get_absolute_url()}")
    page.get_by_role("link", name="Edit (propose a new version)").click()
    page.get_by_label("Maximum window (minutes)").fill("240")
    page.get_by_role("button", name="Propose for approval").click()

    expect(_version(page, 2).get_by_test_id("version-status")).to_have_text("Awaiting approval")
    expect(_version(page, 1).get_by_test_id("version-status")).to_have_text("Approved")

    _sign_in(page, base, "security")
    page.goto(f"{base}{approved_template.get_absolute_url()}")
    page.get_by_label("Your comment as Security").fill("Four hours is not routine here.")
    page.get_by_role("button", name="Reject version 2").click()

    expect(page.get_by_text("Your decision on the template is recorded.")).to_be_visible()
    expect(_version(page, 2).get_by_test_id("version-status")).to_have_text("Rejected")
    expect(_version(page, 1).get_by_test_id("version-status")).to_have_text("Approved")
    assert approved_template.versions.get(number=2).status == TemplateStatus.REJECTED


def test_its_author_retires_a_template_and_no_change_can_be_filed_from_it(
    page: Page, live_server, engineer, approved_template
):
    base = live_server.url
    _sign_in(page, base, "engineer")
    page.goto(f"{base}{approved_template.get_absolute_url()}")
    page.get_by_label("Why retire it").fill("The edge moved to managed certificates.")
    page.get_by_role("button", name=f"Retire {approved_template.public_id}").click()

    expect(page.get_by_text("is retired; no change can be filed from it.")).to_be_visible()
    expect(page.get_by_test_id("template-state")).to_have_text("Retired")
    expect(page.get_by_role("link", name="File a change from it")).to_have_count(0)
    page.goto(f"{base}/templates/{approved_template.pk}/file/")
    expect(page.get_by_text(f"{approved_template.public_id} is retired.")).to_be_visible()


def _get(url: str, key: str) -> tuple[int, str, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.headers["Content-Type"], json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], json.load(error)


def test_an_operator_creates_a_token_on_preferences_uses_it_and_revokes_it(
    page: Page, live_server, operator
):
    base = live_server.url
    _sign_in(page, base, "operator")
    page.goto(f"{base}/preferences/")
    tokens = page.get_by_test_id("api-tokens")
    expect(tokens.get_by_test_id("token-list")).to_contain_text("You have no API tokens.")
    tokens.get_by_label("Token name").fill("deploy pipeline")
    tokens.get_by_label("Expires after (days)").fill("30")
    tokens.get_by_role("button", name="Create token").click()

    expect(page.get_by_text("Copy the token now: it is not shown again.")).to_be_visible()
    key = page.get_by_test_id("new-token").input_value()
    token = ApiToken.objects.get(user=operator)
    assert key.startswith("cmp_") and token.scopes == ["read"]

    status, kind, body = _get(f"{base}/api/windows/", key)
    assert (status, kind) == (200, "application/json") and "results" in body
    assert AuditEvent.objects.filter(action="api.token_used", object_id=token.display_id).exists()

    page.goto(f"{base}/preferences/")
    assert key not in page.content()
    row = page.get_by_test_id("token-list").get_by_role("row", name=token.display_id)
    expect(row).to_contain_text("deploy pipeline")
    expect(row).to_contain_text("Active")
    row.get_by_role("button", name=f"Revoke {token.display_id}").click()

    expect(page.get_by_test_id("token-list")).to_contain_text("Revoked")
    status, kind, body = _get(f"{base}/api/windows/", key)
    assert (status, kind) == (401, "application/problem+json")
    assert body["detail"] == "This API token was revoked."
