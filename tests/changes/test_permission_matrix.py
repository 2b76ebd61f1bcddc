"""Every change URL, as every role, on a change of the user's own tenant or another's.

Rules, from changes/access.py and changes/views.py:
- anonymous users are sent to the login page (302) before anything else;
- a change a user may not see answers 404: its tenants are not theirs, they did not
  request it and hold no approval on it (COMPLIANCE sees every change);
- a change seen but not changeable answers 403: only the requester edits, submits and
  cancels; only REQUESTER/ENGINEERING/OPERATIONS/SECURITY create or copy; only holders
  of an approval's role decide or delegate it; only approvers have a queue.

The approval here is the SECURITY approval of a Standard SECURITY change in review.
``outsider`` holds every creator/approver role but only sees the other tenant, so
"own" for them is that tenant's change and "other" is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse

from changes.models import Approval, ChangeRequest, State
from changes.services import change_submit
from portal.models import AuditEvent
from tests.factories import ChangeRequestFactory, ComponentFactory
from tests.matrix import LOGIN, ROLES


@dataclass(frozen=True)
class Endpoint:
    url_name: str
    method: str
    target: str  # what it acts on: "" (nothing), "draft", "in_review", "rejected", "approval"


ENDPOINTS = {
    "list": Endpoint("changes:list", "get", ""),
    "create": Endpoint("changes:create", "get", ""),
    "approvals": Endpoint("changes:approvals", "get", ""),
    "detail": Endpoint("changes:detail", "get", "in_review"),
    "edit": Endpoint("changes:edit", "get", "draft"),
    "submit": Endpoint("changes:submit", "post", "draft"),
    "cancel": Endpoint("changes:cancel", "post", "in_review"),
    "copy": Endpoint("changes:copy", "post", "rejected"),
    "approval": Endpoint("changes:approval", "get", "approval"),
    "decide": Endpoint("changes:approval", "post", "approval"),
    "delegate": Endpoint("changes:delegate", "post", "approval"),
}

_ = None  # the URL names no object
# fmt: off
MATRIX = {
    # endpoint, whose change  requester eng  ops  sec  compliance cto  ciso outsider anonymous
    ("list", _):             (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("create", _):           (200,      200, 200, 200, 403,       403, 403, 200,     LOGIN),
    ("approvals", _):        (403,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("detail", "own"):       (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("detail", "other"):     (404,      404, 404, 404, 200,       404, 404, 404,     LOGIN),
    ("edit", "own"):         (200,      403, 403, 403, 403,       403, 403, 403,     LOGIN),
    ("edit", "other"):       (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("submit", "own"):       (302,      403, 403, 403, 403,       403, 403, 403,     LOGIN),
    ("submit", "other"):     (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("cancel", "own"):       (302,      403, 403, 403, 403,       403, 403, 403,     LOGIN),
    ("cancel", "other"):     (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("copy", "own"):         (302,      302, 302, 302, 403,       403, 403, 302,     LOGIN),
    ("copy", "other"):       (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("approval", "own"):     (403,      403, 403, 200, 403,       403, 403, 200,     LOGIN),
    ("approval", "other"):   (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("decide", "own"):       (403,      403, 403, 302, 403,       403, 403, 302,     LOGIN),
    ("decide", "other"):     (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("delegate", "own"):     (403,      403, 403, 302, 403,       403, 403, 302,     LOGIN),
    ("delegate", "other"):   (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
}
# fmt: on
assert {endpoint for endpoint, _ in MATRIX} == set(ENDPOINTS), "an endpoint has no row"

CASES = [
    pytest.param(endpoint, whose, role, expected, id=f"{endpoint}-{whose or 'page'}-{role}")
    for (endpoint, whose), row in MATRIX.items()
    for role, expected in zip(ROLES, row, strict=True)
]


def _target(kind: str, *, tenant, requester, component):
    """The object an endpoint acts on, on ``tenant``; returns (change, approval)."""
    if kind == "rejected":
        change = ChangeRequestFactory(
            state=State.REJECTED, requester=requester, tenants=[tenant], components=[component]
        )
        return change, None
    change = ChangeRequestFactory(
        type="SECURITY",
        priority="LOW",
        requester=requester,
        tenants=[tenant],
        components=[component],
    )
    if kind == "draft":
        return change, None
    change = change_submit(change=change, by=requester)
    approval = change.approvals.get(role="SECURITY") if kind == "approval" else None
    return change, approval


def _snapshot() -> tuple:
    changes = list(ChangeRequest.objects.order_by("pk").values_list("pk", "state", "version"))
    approvals = list(Approval.objects.order_by("pk").values_list("pk", "status", "delegated_to"))
    return changes, approvals, AuditEvent.objects.exclude(outcome="DENIED").count()


def _assert_done(endpoint: str, change, approval, user) -> None:
    """A permitted write did what it says."""
    if endpoint == "submit":
        assert ChangeRequest.objects.get(pk=change.pk).state == State.IN_REVIEW
    elif endpoint == "cancel":
        assert ChangeRequest.objects.get(pk=change.pk).state == State.CANCELLED
    elif endpoint == "copy":
        copy = ChangeRequest.objects.get(copied_from=change)
        assert (copy.state, copy.requester) == (State.DRAFT, user)
    elif endpoint == "decide":
        approval.refresh_from_db()
        assert (approval.status, approval.decided_by) == (Approval.Status.APPROVED, user)
    elif endpoint == "delegate":
        approval.refresh_from_db()
        assert approval.delegated_to.username == "deputy"


@pytest.fixture(scope="module")
def owners(people, module_rows):
    """The requester of our tenant's changes, one on the other tenant, and the component
    their changes touch: made once for the module."""
    with module_rows.make():
        their_requester = people.make_user(
            "their-requester", ["REQUESTER"], tenants=[people.other_tenant]
        )
        component = ComponentFactory(name="primary-postgres")
    return people.user("requester"), their_requester, component


@pytest.mark.parametrize(("endpoint", "whose", "role", "expected"), CASES)
def test_permission_matrix(client, make_user, people, owners, endpoint, whose, role, expected):
    spec = ENDPOINTS[endpoint]
    tenant, other_tenant = people.tenant, people.other_tenant
    owner, their_requester, component = owners
    if endpoint == "delegate":
        make_user("deputy", ["SECURITY"], tenants=[tenant, other_tenant])
    user = people.user(role)

    home, away = (other_tenant, tenant) if role == "outsider" else (tenant, other_tenant)
    home_owner, away_owner = (
        (their_requester, owner) if role == "outsider" else (owner, their_requester)
    )
    change = approval = None
    if spec.target:
        on_tenant, by = (home, home_owner) if whose == "own" else (away, away_owner)
        change, approval = _target(spec.target, tenant=on_tenant, requester=by, component=component)

    if approval is not None:
        url = reverse(spec.url_name, args=[approval.pk])
    elif change is not None:
        url = reverse(spec.url_name, args=[change.pk])
    else:
        url = reverse(spec.url_name)
    data = {}
    if endpoint == "decide":
        data = {"decision": "APPROVED", "comment": "Looks safe.", "version": approval.version}
    elif endpoint == "delegate":
        data = {"username": "deputy"}
    elif endpoint in ("submit", "cancel"):
        data = {"version": change.version}

    if user is not None:
        client.force_login(user)
    before = _snapshot()
    response = getattr(client, spec.method)(url, data)

    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(f"{reverse('login')}?next=")
    else:
        assert response.status_code == expected, response.content.decode()[:500]
    if expected in (403, 404, LOGIN) or spec.method == "get":
        assert _snapshot() == before, "a refused or read-only request wrote something"
    if expected == 302:
        _assert_done(endpoint, change, approval, user)
    if endpoint == "list" and expected == 200:
        # Only changes of a tenant the user sees are listed (COMPLIANCE sees all).
        mine = ChangeRequestFactory(requester=home_owner, tenants=[home], title="Visible one")
        theirs = ChangeRequestFactory(requester=away_owner, tenants=[away], title="Hidden one")
        page = client.get(url).content.decode()
        assert mine.public_id in page
        assert (theirs.public_id in page) == (role == "compliance")
