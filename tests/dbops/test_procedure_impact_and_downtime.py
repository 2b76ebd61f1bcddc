"""Seed ``DatabaseMaintenance.impact`` and ``requiresDowntime`` (issue 8, item 17): each
database procedure declares them, the change and approval pages show them, and the
risk assessment counts them (a change with VACUUM FULL scores higher).

Before the fix neither field existed: approvers could not tell VACUUM FULL (an
exclusive lock, the tables unusable meanwhile) from a plain VACUUM, and risk ignored it.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from changes.models import ChangeRequest
from changes.services import change_submit
from maintenance.procedures import registry
from maintenance.services import change_procedure_add
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("kind", "params", "impact", "downtime"),
    [
        ("db_vacuum", {"full": True}, "HIGH", True),
        ("db_vacuum", {"full": False}, "LOW", False),
        ("db_reindex", {"concurrently": True}, "LOW", False),
        ("db_reindex", {"concurrently": False}, "HIGH", True),
        ("db_analyze", {}, "LOW", False),
        ("db_create_index", {}, "LOW", False),
        ("db_upgrade", {}, "MEDIUM", False),
    ],
)
def test_each_database_procedure_declares_its_impact_and_downtime(kind, params, impact, downtime):
    procedure = registry.get(kind)

    assert procedure.impact(params) == impact
    assert procedure.requires_downtime(params) is downtime


@pytest.fixture
def claims_target(make_target, target_db):
    target_db.run(
        "CREATE TABLE claims (id int PRIMARY KEY, status text)",
        "INSERT INTO claims SELECT g, 'new' FROM generate_series(1, 100) g",
    )
    return make_target(name="claims-db")


def _draft(requester, tenant, title: str) -> ChangeRequest:
    return ChangeRequestFactory(
        title=title, type="PERFORMANCE", priority="LOW", requester=requester, tenants=[tenant]
    )


def _vacuum(change, operator, target, *, full: bool) -> None:
    params = {"target": str(target.pk), "tables": ["public.claims"], "analyze": "on"}
    if full:
        params["full"] = "on"
    change_procedure_add(change=change, by=operator, kind="db_vacuum", params=params)


def test_the_change_keeps_the_strongest_impact_of_its_procedures(
    requester, operator, tenant, claims_target
):
    change = _draft(requester, tenant, "Compact claims")
    _vacuum(change, operator, claims_target, full=False)
    change.refresh_from_db()
    assert (change.procedure_count, change.procedure_impact, change.requires_downtime) == (
        1,
        "LOW",
        False,
    )

    _vacuum(change, operator, claims_target, full=True)

    change.refresh_from_db()
    assert (change.procedure_count, change.procedure_impact, change.requires_downtime) == (
        2,
        "HIGH",
        True,
    )


def test_the_change_and_approval_pages_show_impact_and_downtime(
    client, requester, operator, engineer, tenant, claims_target
):
    change = _draft(requester, tenant, "Compact claims")
    _vacuum(change, operator, claims_target, full=True)
    change = change_submit(change=ChangeRequest.objects.get(pk=change.pk), by=requester)
    approval = change.approvals.get(role="ENGINEERING")

    client.force_login(requester)
    detail = client.get(reverse("changes:detail", args=[change.pk])).content.decode()
    client.force_login(engineer)
    page = client.get(reverse("changes:approval", args=[approval.pk])).content.decode()

    profile = detail.split('data-testid="procedure-profile"', 1)[1].split("</dd>", 1)[0]
    assert "impact High" in profile and "needs downtime" in profile
    what = page.split('data-testid="what-will-run"', 1)[1].split("</section>", 1)[0]
    assert "<strong>High</strong>" in what and "needs downtime" in what
    item = what.split('data-testid="procedure-1"', 1)[1]
    assert "<dt>Impact</dt><dd>High</dd>" in item
    assert "<dt>Downtime</dt><dd>needed</dd>" in item


def test_the_risk_assessment_counts_impact_and_downtime(requester, operator, tenant, claims_target):
    plain = _draft(requester, tenant, "VACUUM claims")
    full = _draft(requester, tenant, "VACUUM FULL claims")
    _vacuum(plain, operator, claims_target, full=False)
    _vacuum(full, operator, claims_target, full=True)

    plain = change_submit(change=ChangeRequest.objects.get(pk=plain.pk), by=requester)
    full = change_submit(change=ChangeRequest.objects.get(pk=full.pk), by=requester)

    factors = {f["key"]: f for f in full.risk_factors}
    assert factors["procedure_impact"]["points"] == 15
    assert factors["downtime"]["points"] == 15
    plain_factors = {f["key"]: f for f in plain.risk_factors}
    assert plain_factors["procedure_impact"]["points"] == 0
    assert plain_factors["downtime"]["points"] == 0
    assert full.risk_score == plain.risk_score + 30
