"""The standard change catalog's pages in the permission matrix: every URL × role × a
template of the viewer's own tenant or of another's. A template is seen by whoever sees
one of its tenants (Compliance sees all), proposed and filed from by whoever files
changes, decided by a holder of the role who did not propose it, retired by its author or
an operator. A refused request writes nothing; a permitted POST writes what it says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import reverse

from changes.models import StandardTemplate, TemplateApproval, TemplateVersion
from changes.services import template_approval_decide, template_propose
from portal.models import AuditEvent
from tests.factories import ComponentFactory
from tests.matrix import LOGIN, ROLES

pytestmark = pytest.mark.django_db

_ = None


@dataclass(frozen=True)
class Endpoint:
    url_name: str
    method: str
    target: str  # "" (no object), "approved" (a template), "pending" (its approval)


@dataclass
class Target:
    args: list = field(default_factory=list)
    data: dict = field(default_factory=dict)


ENDPOINTS = {
    "list": Endpoint("changes:templates", "get", ""),
    "new_page": Endpoint("changes:template_new", "get", ""),
    "new": Endpoint("changes:template_new", "post", "proposal"),
    "detail": Endpoint("changes:template", "get", "approved"),
    "edit": Endpoint("changes:template_edit", "get", "approved"),
    "file": Endpoint("changes:template_file", "get", "approved"),
    "retire": Endpoint("changes:template_retire", "post", "retire"),
    "decide": Endpoint("changes:template_decide", "post", "pending"),
}

# fmt: off
MATRIX = {
    # endpoint, whose   requester eng  ops  sec  compliance cto  ciso outsider anonymous
    ("list", _):        (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("new_page", _):    (200,     200, 200, 200, 403,       403, 403, 200,     LOGIN),
    ("new", "own"):     (302,     302, 302, 302, 403,       403, 403, 302,     LOGIN),
    ("detail", "own"):  (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("detail", "other"): (404,    404, 404, 404, 200,       404, 404, 404,     LOGIN),
    ("edit", "own"):    (200,     200, 200, 200, 403,       403, 403, 200,     LOGIN),
    ("edit", "other"):  (404,     404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("file", "own"):    (200,     200, 200, 200, 403,       403, 403, 200,     LOGIN),
    ("file", "other"):  (404,     404, 404, 404, 403,       404, 404, 404,     LOGIN),
    # Its author (the tenant's requester) or an operator retires it.
    ("retire", "own"):  (302,     403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("retire", "other"): (404,    404, 404, 404, 403,       404, 404, 404,     LOGIN),
    # A SECURITY template: a holder of the role who did not propose it decides.
    ("decide", "own"):  (403,     403, 403, 302, 403,       403, 403, 302,     LOGIN),
    ("decide", "other"): (404,    404, 404, 404, 403,       404, 404, 404,     LOGIN),
}
# fmt: on
assert {endpoint for endpoint, _ in MATRIX} == set(ENDPOINTS), "an endpoint has no row"

CASES = [
    pytest.param(endpoint, whose, role, expected, id=f"{endpoint}-{whose or 'any'}-{role}")
    for (endpoint, whose), row in MATRIX.items()
    for role, expected in zip(ROLES, row, strict=True)
]

TEMPLATE = {
    "title_pattern": "Rotate certificates on {component}",
    "description": "Replace the expiring certificates.",
    "type": "SECURITY",
    "implementation_plan": "Deploy the bundle.",
    "backout_plan": "Redeploy the old bundle.",
    "verification_plan": "Check the expiry date.",
    "max_window_minutes": "60",
    "risk_ceiling": "40",
}


@dataclass
class Side:
    tenant: Any
    requester: Any  # proposes the side's templates
    approver: Any  # a SECURITY holder of the side's tenant
    component: Any


def _propose(side: Side, name: str) -> TemplateVersion:
    return template_propose(
        by=side.requester,
        data={**TEMPLATE, "name": name, "max_window_minutes": 60, "risk_ceiling": 40},
        components=[side.component],
        tenants=[side.tenant],
    )


def _approved(side: Side) -> StandardTemplate:
    version = _propose(side, f"{side.tenant.slug} certificates")
    template_approval_decide(
        approval=version.approvals.get(), by=side.approver, decision="APPROVED"
    )
    return StandardTemplate.objects.get(pk=version.template_id)


def _build(kind: str, side: Side) -> Target:
    if kind == "proposal":
        data = {**TEMPLATE, "name": "Rotate certificates"}
        return Target(data={**data, "components": side.component.pk, "tenants": side.tenant.pk})
    if kind == "approved":
        return Target(args=[_approved(side).pk])
    if kind == "retire":
        template = _approved(side)
        return Target(
            args=[template.pk], data={"reason": "Superseded.", "version": template.version}
        )
    if kind == "pending":
        approval = _propose(side, f"{side.tenant.slug} pending").approvals.get()
        return Target(
            args=[approval.pk], data={"decision": "APPROVED", "version": approval.version}
        )
    return Target()


def _snapshot() -> tuple:
    return (
        StandardTemplate.objects.filter(retired_at__isnull=False).count(),
        TemplateVersion.objects.count(),
        TemplateApproval.objects.exclude(status="PENDING").count(),
        AuditEvent.objects.exclude(outcome="DENIED").count(),
    )


@pytest.fixture(scope="module")
def sides(people, module_rows):
    """Both tenants' requesters, approvers and components, made once for the module."""

    def side(tenant, requester, label):
        return Side(
            tenant=tenant,
            requester=requester,
            approver=people.make_user(f"{label}-security", ["SECURITY"], tenants=[tenant]),
            component=ComponentFactory(name=f"{label}-edge"),
        )

    with module_rows.make():
        theirs = people.make_user("globex-requester", ["REQUESTER"], tenants=[people.other_tenant])
        return (
            side(people.tenant, people.user("requester"), "acme"),
            side(people.other_tenant, theirs, "globex"),
        )


@pytest.mark.parametrize(("endpoint", "whose", "role", "expected"), CASES)
def test_template_permission_matrix(client, people, sides, endpoint, whose, role, expected):
    user = people.user(role)
    acme, globex = sides
    own, other = (globex, acme) if role == "outsider" else (acme, globex)
    spec = ENDPOINTS[endpoint]
    target = _build(spec.target, other if whose == "other" else own)
    if user is not None:
        client.force_login(user)
    before = _snapshot()

    url = reverse(spec.url_name, args=target.args)
    response = getattr(client, spec.method)(url, target.data)

    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(f"{reverse('login')}?next=")
    else:
        assert response.status_code == expected, response.content.decode()[:800]
    if expected in (403, 404, LOGIN) or spec.method == "get":
        assert _snapshot() == before, "a refused or read-only request wrote something"
    else:
        assert _snapshot() != before, "a permitted request wrote nothing"
