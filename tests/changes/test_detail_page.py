"""What the change page names: the components, services and tenants a change touches
(read in one query for the three), the change it was copied from (by its id alone),
and who decided each approval or holds it as a delegate (their names alone)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.html import escape

from changes.models import ChangeRequest, State
from tests.factories import ApprovalFactory, ComponentFactory, ServiceFactory, TenantFactory

pytestmark = pytest.mark.django_db


def _field(html: str, label: str) -> str:
    """The text of the page's ``<dd>`` after the ``<dt>`` named ``label``."""
    match = re.search(rf"<dt>{label}</dt><dd[^>]*>(.*?)</dd>", html, re.S)
    assert match, f"no {label} field on the page"
    return match.group(1)


def test_the_change_page_names_each_kind_of_impact_in_name_order(
    client, requester, tenant, make_change
):
    west = TenantFactory(slug="acme-west", name="Acme West")
    change = make_change(
        components=[ComponentFactory(name="zeta-cache"), ComponentFactory(name="alpha-db")],
        services=[ServiceFactory(name="Billing <API>"), ServiceFactory(name="Audit API")],
        tenants=[tenant, west],
    )
    client.force_login(requester)

    html = client.get(change.get_absolute_url()).content.decode()

    assert _field(html, "Components") == "alpha-db, zeta-cache"
    assert _field(html, "Services") == f"Audit API, {escape('Billing <API>')}"
    assert _field(html, "Tenants") == ", ".join(sorted([tenant.name, west.name]))


def test_a_change_that_touches_no_service_says_so(client, requester, make_change):
    change = make_change(services=[])
    client.force_login(requester)

    html = client.get(change.get_absolute_url()).content.decode()

    assert _field(html, "Services") == "—"
    assert _field(html, "Components") == "primary-postgres"


def test_a_copy_links_to_the_change_it_was_copied_from(client, requester, make_change):
    original = make_change(state=State.REJECTED)
    copy = make_change(copied_from=original)
    client.force_login(requester)

    html = client.get(copy.get_absolute_url()).content.decode()

    assert f'copied from <a href="{original.get_absolute_url()}">{original.public_id}</a>' in html
    assert ChangeRequest.public_id_of(original.pk) == copy.copied_from_public_id


def test_a_change_filed_fresh_names_no_original(client, requester, make_change):
    change = make_change()
    client.force_login(requester)

    html = client.get(change.get_absolute_url()).content.decode()

    assert "copied from" not in html
    assert change.copied_from_public_id == ""


def test_the_change_page_names_who_decided_each_approval_and_its_delegate(
    client, requester, security, operator, make_change
):
    change = make_change(state=State.IN_REVIEW)
    ApprovalFactory(
        change=change,
        role="SECURITY",
        status="APPROVED",
        decided_by=security,
        decided_at=timezone.now(),
        comments="Fine by me",
    )
    ApprovalFactory(
        change=change,
        role="OPERATIONS",
        delegated_to=operator,
        delegated_by=security,
        delegated_at=timezone.now(),
        delegation_expires_at=timezone.now() + timedelta(days=1),
    )
    ApprovalFactory(change=change, role="ENGINEERING")
    client.force_login(requester)

    html = client.get(change.get_absolute_url()).content.decode()

    rows = {
        role: _squeezed(cells)
        for role, cells in re.findall(r'<tr[^>]*data-role="(\w+)">(.*?)</tr>', html, re.S)
    }
    assert "<td>security</td>" in rows["SECURITY"]
    assert '<td>—<span class="muted">(delegated to operator)</span></td>' in rows["OPERATIONS"]
    assert "<td>—</td>" in rows["ENGINEERING"] and "delegated" not in rows["ENGINEERING"]


def _squeezed(html: str) -> str:
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", html)).replace("— <", "—<")
