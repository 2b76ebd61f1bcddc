"""Every API endpoint, as every role, on an object of the user's own tenant or another's:
the same answers as the pages' matrix (tests/changes/test_permission_matrix.py) in the
API's terms, and nothing written on a refusal.

- no token (anonymous) is a 401 problem; the docs and the token pages, which use the
  session, send anonymous users to the login page;
- an object a user may not see is a 404 (its tenants are not theirs; Compliance sees
  every change); one seen but not theirs to change is a 403;
- a window is shared: everyone who may see windows reads it, but a change of a tenant
  they may not see is listed without its id or title.

``outsider`` holds every creator and approver role but sees only the other tenant, so
"own" for them is that tenant's object and "other" is ours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken
from api.services import api_token_create
from changes.models import Approval, ChangeRequest
from changes.services import change_submit, template_approval_decide, template_propose
from compliance.models import ExportJob
from maintenance.models import (
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceWindow,
    ProcedureRun,
    ScheduledChange,
    WindowType,
)
from portal.models import AuditEvent
from tests.api.conftest import change_body
from tests.factories import ChangeRequestFactory
from tests.matrix import LOGIN, ROLES

pytestmark = pytest.mark.django_db

_ = None


@dataclass(frozen=True)
class Endpoint:
    url_name: str
    method: str
    target: str  # what it acts on ("" for nothing)
    session: bool = False  # a page using the signed-in session, not a token


ENDPOINTS = {
    "schema": Endpoint("api:schema", "get", ""),
    "docs": Endpoint("api:docs", "get", "", session=True),
    "redoc": Endpoint("api:redoc", "get", "", session=True),
    "changes": Endpoint("api:changes", "get", ""),
    "create": Endpoint("api:changes", "post", "new_change"),
    "change": Endpoint("api:change", "get", "in_review"),
    "update": Endpoint("api:change", "patch", "draft"),
    "submit": Endpoint("api:change_submit", "post", "draft"),
    "cancel": Endpoint("api:change_cancel", "post", "in_review"),
    "approvals": Endpoint("api:approvals", "get", ""),
    "approval": Endpoint("api:approval", "get", "approval"),
    "decide": Endpoint("api:approval_decide", "post", "approval"),
    "windows": Endpoint("api:windows", "get", ""),
    "window": Endpoint("api:window", "get", "window"),
    "run": Endpoint("api:run", "get", "run"),
    "calendar": Endpoint("api:calendar", "get", "calendar"),
    "templates": Endpoint("api:templates", "get", ""),
    "file": Endpoint("api:template_file", "post", "template"),
    "exports": Endpoint("api:exports", "post", "export_request"),
    "export": Endpoint("api:export", "get", "job"),
    "download": Endpoint("api:export_download", "get", "job"),
    "gate": Endpoint("api:gate", "get", "gate"),
    "token_create": Endpoint("api:token_create", "post", "token_request", session=True),
    "token_revoke": Endpoint("api:token_revoke", "post", "token", session=True),
    # Any other path under /api/ (reversed as /api//): a problem 404, token or not.
    "unknown": Endpoint("api:unknown", "get", ""),
}

# fmt: off
MATRIX = {
    # endpoint, whose    requester eng  ops  sec  compliance cto  ciso outsider anonymous
    ("schema", _):        (200,     200, 200, 200, 200,       200, 200, 200,     401),
    ("docs", _):          (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("redoc", _):         (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("changes", _):       (200,     200, 200, 200, 200,       200, 200, 200,     401),
    ("create", "own"):    (201,     201, 201, 201, 403,       403, 403, 201,     401),
    ("change", "own"):    (200,     200, 200, 200, 200,       200, 200, 200,     401),
    ("change", "other"):  (404,     404, 404, 404, 200,       404, 404, 404,     401),
    ("update", "own"):    (200,     403, 403, 403, 403,       403, 403, 403,     401),
    ("update", "other"):  (404,     404, 404, 404, 403,       404, 404, 404,     401),
    ("submit", "own"):    (200,     403, 403, 403, 403,       403, 403, 403,     401),
    ("submit", "other"):  (404,     404, 404, 404, 403,       404, 404, 404,     401),
    ("cancel", "own"):    (200,     403, 403, 403, 403,       403, 403, 403,     401),
    ("cancel", "other"):  (404,     404, 404, 404, 403,       404, 404, 404,     401),
    ("approvals", _):     (403,     200, 200, 200, 200,       200, 200, 200,     401),
    ("approval", "own"):  (403,     403, 403, 200, 403,       403, 403, 200,     401),
    ("approval", "other"): (404,    404, 404, 404, 403,       404, 404, 404,     401),
    ("decide", "own"):    (403,     403, 403, 200, 403,       403, 403, 200,     401),
    ("decide", "other"):  (404,     404, 404, 404, 403,       404, 404, 404,     401),
    ("windows", _):       (200,     200, 200, 200, 200,       200, 200, 200,     401),
    ("window", "own"):    (200,     200, 200, 200, 200,       200, 200, 200,     401),
    ("run", "own"):       (200,     200, 200, 200, 200,       200, 200, 200,     401),
    ("run", "other"):     (404,     404, 404, 404, 200,       404, 404, 404,     401),
    ("calendar", "own"):  (200,     200, 200, 200, 200,       200, 200, 200,     401),
    ("templates", _):     (200,     200, 200, 200, 200,       200, 200, 200,     401),
    ("file", "own"):      (201,     201, 201, 201, 403,       403, 403, 201,     401),
    ("file", "other"):    (404,     404, 404, 404, 403,       404, 404, 404,     401),
    ("exports", "own"):   (202,     202, 202, 202, 202,       202, 202, 202,     401),
    ("export", "own"):    (200,     200, 200, 200, 200,       200, 200, 200,     401),
    ("export", "other"):  (404,     404, 404, 404, 404,       404, 404, 404,     401),
    ("download", "own"):  (409,     409, 409, 409, 409,       409, 409, 409,     401),
    ("download", "other"): (404,    404, 404, 404, 404,       404, 404, 404,     401),
    ("gate", "own"):      (423,     423, 423, 423, 423,       423, 423, 423,     401),
    ("gate", "other"):    (404,     404, 404, 404, 423,       404, 404, 404,     401),
    ("token_create", _):  (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("token_revoke", "own"): (302,  302, 302, 302, 302,       302, 302, 302,     LOGIN),
    ("token_revoke", "other"): (404, 404, 404, 404, 404,      404, 404, 404,     LOGIN),
    ("unknown", _):       (404,     404, 404, 404, 404,       404, 404, 404,     404),
}
# fmt: on
assert {endpoint for endpoint, _ in MATRIX} == set(ENDPOINTS), "an endpoint has no row"

CASES = [
    pytest.param(endpoint, whose, role, expected, id=f"{endpoint}-{whose or 'page'}-{role}")
    for (endpoint, whose), row in MATRIX.items()
    for role, expected in zip(ROLES, row, strict=True)
]


@dataclass
class Side:
    tenant: Any
    requester: Any
    approver: Any  # SECURITY of this tenant
    component: Any
    label: str


@dataclass
class Target:
    args: list
    query: dict
    body: dict
    secret: str = ""  # a title only a viewer who may see it reads


def _change(side: Side, **kwargs) -> ChangeRequest:
    kwargs.setdefault("title", f"{side.label} change {ChangeRequest.objects.count() + 1}")
    return ChangeRequestFactory(
        requester=side.requester,
        tenants=[side.tenant],
        components=[side.component],
        type="SECURITY",
        priority="LOW",
        **kwargs,
    )


def _window(*, start, status="PLANNED") -> MaintenanceWindow:
    return MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=start,
        duration_minutes=240,
        notification_offsets=[60],
        status=status,
    )


def _slot(window, change, by) -> None:
    ScheduledChange.objects.create(
        window=window,
        change=change,
        position=window.scheduled_changes.count() + 1,
        planned_start=window.start,
        planned_minutes=30,
        scheduled_by=by,
    )


def _run(side: Side, by) -> ProcedureRun:
    change = _change(side, state="in_progress")
    window = _window(start=timezone.now() - timedelta(minutes=10), status="IN_PROGRESS")
    _slot(window, change, by)
    execution = MaintenanceExecution.objects.create(
        window=window, planned_at=window.start, status="IN_PROGRESS", started_at=window.start
    )
    item = ChangeProcedure.objects.create(
        change=change, position=1, kind="manual_checklist",
        params={"steps": ["Drain node A"], "estimated_minutes": 10}, added_by=side.requester,
    )  # fmt: skip
    return ProcedureRun.objects.create(
        procedure=item, change=change, execution=execution,
        idempotency_key=f"api-matrix-{item.pk}", status="WAITING",
    )  # fmt: skip


def _template(side: Side):
    version = template_propose(
        by=side.requester,
        data={
            "name": f"{side.label} certificates",
            "title_pattern": "Rotate certificates on {component}",
            "description": "Replace the expiring certificates.",
            "type": "SECURITY",
            "implementation_plan": "Deploy the bundle.",
            "backout_plan": "Redeploy the old bundle.",
            "verification_plan": "Check the expiry date.",
            "max_window_minutes": 60,
            "risk_ceiling": 40,
        },
        components=[side.component],
        tenants=[side.tenant],
    )
    template_approval_decide(
        approval=version.approvals.get(), by=side.approver, decision="APPROVED"
    )
    return version.template


def _build(kind: str, side: Side, user, other_user, superuser) -> Target:
    if kind == "new_change":
        return Target([], {}, change_body(side.component, side.tenant))
    if kind == "draft":
        return Target([_change(side).pk], {}, {"title": "Edited", "version": 1})
    if kind == "in_review":
        change = change_submit(change=_change(side), by=side.requester)
        return Target([change.pk], {}, {})
    if kind == "approval":
        change = change_submit(change=_change(side), by=side.requester)
        approval = change.approvals.get(role="SECURITY")
        return Target([approval.pk], {}, {"decision": "APPROVED", "version": approval.version})
    if kind == "window":
        window = _window(start=timezone.now() + timedelta(days=3))
        own, other = _change(side, state="scheduled"), _change(other_side(side), state="scheduled")
        _slot(window, own, superuser)
        _slot(window, other, superuser)
        return Target([window.pk], {}, {}, secret=other.title)
    if kind == "calendar":
        window = _window(start=timezone.now() + timedelta(days=3))
        other = _change(other_side(side), state="scheduled")
        _slot(window, other, superuser)
        today = timezone.now().date()
        return Target(
            [], {"start": today.isoformat(), "end": (today + timedelta(days=7)).isoformat()}, {},
            secret=other.title,
        )  # fmt: skip
    if kind == "run":
        return Target([_run(side, superuser).pk], {}, {})
    if kind == "template":
        template = _template(side)
        body = {
            "components": [side.component.name],
            "tenants": [side.tenant.slug],
            "proposed_start": (timezone.now() + timedelta(days=10)).isoformat(),
            "window_minutes": 30,
        }
        return Target([template.pk], {}, body)
    if kind == "export_request":
        return Target([], {}, {"exporter": "changes", "format": "csv"})
    if kind == "job":
        owner = user if side is SIDES["own"] and getattr(user, "pk", None) else other_user
        job = ExportJob.objects.create(exporter="changes", format="csv", requested_by=owner)
        return Target([job.pk], {}, {})
    if kind == "gate":
        return Target([], {"component": side.component.name, "tenant": side.tenant.slug}, {})
    if kind == "token_request":
        return Target([], {}, {"name": "deploy", "scopes": ["read"], "days": "30"})
    if kind == "token":
        owner = user if side is SIDES["own"] and getattr(user, "pk", None) else other_user
        created = api_token_create(by=owner, name="theirs", scopes=["read"], days=30)
        return Target([created.token.pk], {}, {})
    return Target([], {}, {})


SIDES: dict[str, Side] = {}


def other_side(side: Side) -> Side:
    return SIDES["other"] if side is SIDES["own"] else SIDES["own"]


@pytest.fixture(scope="module")
def sides(people, module_rows):
    """Both tenants' people and components, made once for the module."""
    from tests.factories import ComponentFactory

    with module_rows.make():
        ours = Side(
            people.tenant,
            people.user("requester"),
            people.user("security"),
            ComponentFactory(name="edge-proxy"),
            "Acme",
        )
        theirs = Side(
            people.other_tenant,
            people.make_user("globex-requester", ["REQUESTER"], tenants=[people.other_tenant]),
            people.make_user("globex-security", ["SECURITY"], tenants=[people.other_tenant]),
            ComponentFactory(name="globex-db"),
            "Globex",
        )
        someone_else = people.make_user("someone-else", ["REQUESTER"])
    return ours, theirs, someone_else


def _snapshot() -> tuple:
    return (
        list(ChangeRequest.objects.order_by("pk").values_list("pk", "state", "version", "title")),
        list(Approval.objects.order_by("pk").values_list("pk", "status")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        ExportJob.objects.count(),
        AuditEvent.objects.exclude(outcome="DENIED").exclude(action="api.token_used").count(),
    )


def _call(client: Client, spec: Endpoint, target: Target, key: str | None):
    """A token request as a pipeline sends it (JSON), a page's form as a browser does."""
    url = reverse(spec.url_name, args=target.args)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    if spec.method == "get":
        return client.get(url, target.query, **headers)
    if spec.session:
        return client.post(url, target.body)
    send = client.patch if spec.method == "patch" else client.post
    return send(url, json.dumps(target.body), content_type="application/json", **headers)


@pytest.mark.parametrize(("endpoint", "whose", "role", "expected"), CASES)
def test_api_permission_matrix(people, sides, endpoint, whose, role, expected):
    ours, theirs, someone_else = sides
    user = people.user(role)
    # The outsider's own tenant is the other one.
    own, other = (theirs, ours) if role == "outsider" else (ours, theirs)
    SIDES.clear()
    SIDES.update(own=own, other=other)
    spec = ENDPOINTS[endpoint]
    side = {"own": own, "other": other}.get(whose or "own")
    target = _build(spec.target, side, user, someone_else, people.user("superuser"))
    client = Client()
    key = None
    if user is not None:
        if spec.session:
            client.force_login(user)
        else:
            key = api_token_create(
                by=user, name="matrix", scopes=["read", "write", "decide"], days=1
            ).key
    before = _snapshot()

    response = _call(client, spec, target, key)

    if expected == LOGIN:
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == expected, response.content[:500]
    if expected in (401, 403, 404, 409, LOGIN, 423) or spec.method == "get":
        assert _snapshot() == before, "a refused or read-only request wrote something"
    elif expected in (200, 201, 202, 302):
        assert _snapshot() != before, "a permitted write wrote nothing"
    if expected == 200 and target.secret:
        seen = target.secret in response.content.decode()
        assert seen == (role == "compliance"), "another tenant's change is named"
    if expected in (401, 403, 404, 409, 423):
        # The token forms are Preferences pages: their refusals are the HTML error pages.
        kind = "text/html; charset=utf-8" if spec.session else "application/problem+json"
        assert response["Content-Type"] == kind
