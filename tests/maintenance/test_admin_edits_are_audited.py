"""Every admin edit is an audit row in the chain (issue 9, move 9): a risk rule edited in
the change list (list_editable, in Chromium), an approval rule, a maintenance policy, a
freeze, a user's role membership and a tenant grant made on guardian's object-permission
page, each with who, what and the values before and after.

Before the restructure these were edited in the admin without an audit row.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import Page, expect

from changes.models import ApprovalRule, RiskRule
from maintenance.models import BlackoutPeriod, MaintenancePolicy, WindowType
from portal.models import AuditEvent
from portal.permissions import visible_tenants
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


class _FormFields(HTMLParser):
    """The values a browser would submit from the admin's change form, as it shows them."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.data.setdefault(name, []).append(a.get("value", "on"))
            else:
                self.data.setdefault(name, []).append(a.get("value", ""))
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _change_form(client, url: str, form_id: str) -> dict[str, list[str]]:
    parser = _FormFields(form_id)
    parser.feed(client.get(url).content.decode())
    assert parser.data, f"no form {form_id} on {url}"
    return parser.data


def _event(action: str) -> AuditEvent:
    return AuditEvent.objects.get(action=action)


def test_an_approval_rule_edit_is_audited(client, superuser):
    rule = ApprovalRule.objects.get(category="STANDARD", change_type="SECURITY", role="SECURITY")
    client.force_login(superuser)
    url = reverse("admin:changes_approvalrule_change", args=[rule.pk])
    data = _change_form(client, url, "approvalrule_form")
    data["due_hours"] = ["48"]

    response = client.post(url, data)

    assert response.status_code == 302
    event = _event("admin.changes.approvalrule.changed")
    assert event.username == "root" and event.object_id == str(rule.pk)
    assert event.details["fields"] == {"due_hours": {"from": 72, "to": 48}}


def test_a_maintenance_policy_edit_is_audited(client, superuser):
    policy = MaintenancePolicy.objects.get(type=WindowType.EMERGENCY)
    client.force_login(superuser)
    url = reverse("admin:maintenance_maintenancepolicy_change", args=[policy.pk])
    data = _change_form(client, url, "maintenancepolicy_form")
    data["min_notice_minutes"] = ["90"]
    data["cutoff_behavior"] = ["CANCEL"]

    response = client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    event = _event("admin.maintenance.maintenancepolicy.changed")
    assert event.details["fields"]["min_notice_minutes"] == {"from": 60, "to": 90}
    assert event.details["fields"]["cutoff_behavior"]["to"] == "CANCEL"
    assert set(event.details["fields"]) == {"min_notice_minutes", "cutoff_behavior"}


def test_a_freeze_edit_and_removal_are_audited(client, superuser):
    period = BlackoutPeriod.objects.create(
        start_date="2027-03-01", end_date="2027-03-05", reason="Quarter close"
    )
    client.force_login(superuser)
    url = reverse("admin:maintenance_blackoutperiod_change", args=[period.pk])
    data = _change_form(client, url, "blackoutperiod_form")
    data["end_date"] = ["2027-03-08"]

    assert client.post(url, data).status_code == 302
    response = client.post(
        reverse("admin:maintenance_blackoutperiod_delete", args=[period.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    changed = _event("admin.maintenance.blackoutperiod.changed")
    assert changed.details["fields"]["end_date"] == {"from": "2027-03-05", "to": "2027-03-08"}
    deleted = _event("admin.maintenance.blackoutperiod.deleted")
    assert "Quarter close" in deleted.details["object"]
    assert not BlackoutPeriod.objects.exists()


def test_a_role_given_to_a_user_is_audited(client, superuser, requester):
    client.force_login(superuser)
    url = reverse("admin:auth_user_change", args=[requester.pk])
    data = _change_form(client, url, "user_form")
    data["groups"] = [
        str(Group.objects.get(name="REQUESTER").pk),
        str(Group.objects.get(name="SECURITY").pk),
    ]

    response = client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert set(requester.groups.values_list("name", flat=True)) == {"REQUESTER", "SECURITY"}
    event = _event("admin.auth.user.roles_changed")
    assert event.details["added"] == ["SECURITY"] and event.details["removed"] == []
    assert event.object_id == str(requester.pk)
    # The password hash the form carried is never written to the trail.
    assert not AuditEvent.objects.filter(details__icontains=requester.password[-20:]).exists()


def test_a_tenant_grant_on_guardians_page_is_audited(client, superuser, other_tenant, requester):
    assert other_tenant not in visible_tenants(requester)
    client.force_login(superuser)
    url = reverse(
        "admin:portal_tenant_permissions_manage_user", args=[other_tenant.pk, requester.pk]
    )

    response = client.post(url, {"permissions": ["view_tenant"]})

    assert response.status_code == 302
    assert other_tenant in visible_tenants(requester)
    event = _event("admin.portal.tenant.permissions_set")
    assert event.username == "root"
    assert event.details["user"] == str(requester.pk)
    assert event.details["permissions"] == ["view_tenant"]


def test_the_admin_refuses_a_non_staff_user_and_writes_nothing(client, operator):
    rule = ApprovalRule.objects.first()
    client.force_login(operator)
    before = AuditEvent.objects.exclude(outcome="DENIED").count()

    response = client.post(
        reverse("admin:changes_approvalrule_change", args=[rule.pk]), {"due_hours": "1"}
    )

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert ApprovalRule.objects.get(pk=rule.pk).due_hours == rule.due_hours
    assert AuditEvent.objects.exclude(outcome="DENIED").count() == before


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_risk_rule_edited_in_the_change_list_is_audited(page: Page, live_server, superuser):
    rule = RiskRule.objects.get(factor="priority", match="CRITICAL")
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{live_server.url}/admin/changes/riskrule/?factor__exact=priority")
    row = page.locator("#result_list tbody tr", has_text="CRITICAL")
    row.locator("input[name$='-points']").fill("45")
    page.get_by_role("button", name="Save").click()

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert RiskRule.objects.get(pk=rule.pk).points == 45
    event = AuditEvent.objects.get(action="admin.changes.riskrule.changed")
    assert event.username == "root" and event.object_id == str(rule.pk)
    assert event.details["fields"] == {"points": {"from": 40, "to": 45}}
