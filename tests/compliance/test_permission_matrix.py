"""Every compliance URL, as every role, on an object of the user's own tenant (or their
own job) and on another's; nothing is written when a request is refused.

Rules (compliance/access.py, the views):
- anonymous users go to the login page, except for the public signing key;
- the audit trail, its exports and chain verification are COMPLIANCE's;
- the change register follows the change list: everyone, each seeing what /changes/ shows;
- KPIs: COMPLIANCE, CTO, HEAD_OF_SECURITY (over the changes each may see);
- an evidence pack: whoever may see the change, 404 for anyone else;
- an export job: its requester's alone, 404 for anyone else; not ready yet: 409;
- MFA pages: every signed-in user, for themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from compliance.models import ChainVerification, ExportJob, RecoveryDevice
from portal.models import AuditEvent
from tests.factories import ChangeRequestFactory
from tests.matrix import LOGIN, ROLES

pytestmark = pytest.mark.django_db

_ = None


@dataclass(frozen=True)
class Endpoint:
    path: str  # {obj}: the object's id
    method: str
    data: dict | None = None


ENDPOINTS = {
    "reports": Endpoint("/reports/", "get"),
    "verify_chain": Endpoint("/reports/verify-chain/", "post"),
    "verification": Endpoint("/reports/verify-chain/{obj}/", "get"),
    "signing_key": Endpoint("/reports/signing-key.pem", "get"),
    "changes_csv": Endpoint("/reports/changes.csv", "get"),
    "changes_xlsx": Endpoint("/reports/changes.xlsx", "get"),
    "audit_csv": Endpoint("/reports/audit.csv", "get"),
    "audit_xlsx": Endpoint("/reports/audit.xlsx", "get"),
    "export_audit": Endpoint("/reports/exports/", "post", {"exporter": "audit", "format": "csv"}),
    "export_changes": Endpoint(
        "/reports/exports/", "post", {"exporter": "changes", "format": "csv"}
    ),
    "export_job": Endpoint("/reports/exports/{obj}/", "get"),
    "export_download": Endpoint("/reports/exports/{obj}/download/", "get"),
    "kpis": Endpoint("/reports/kpis/", "get"),
    "kpi_csv": Endpoint("/reports/kpis/overruns.csv", "get"),
    "evidence": Endpoint("/changes/{obj}/evidence.zip", "get"),
    "mfa": Endpoint("/mfa/", "get"),
    "mfa_enrol": Endpoint("/mfa/enrol/", "get"),
    "mfa_enrol_post": Endpoint("/mfa/enrol/", "post", {"otp_token": "000000"}),
    "mfa_verify": Endpoint("/mfa/verify/", "get"),
    "mfa_verify_post": Endpoint("/mfa/verify/", "post", {"otp_token": "000000"}),
    "mfa_recovery": Endpoint("/mfa/recovery-codes/", "post"),
}

# fmt: off
MATRIX = {
    # endpoint, whose          requester eng  ops  sec  compliance cto  ciso outsider anonymous
    ("reports", _):             (403,     403, 403, 403, 200,       403, 403, 403,     LOGIN),
    ("verify_chain", _):        (403,     403, 403, 403, 302,       403, 403, 403,     LOGIN),
    ("verification", _):        (403,     403, 403, 403, 200,       403, 403, 403,     LOGIN),
    ("signing_key", _):         (200,     200, 200, 200, 200,       200, 200, 200,     200),
    ("changes_csv", _):         (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("changes_xlsx", _):        (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("audit_csv", _):           (403,     403, 403, 403, 200,       403, 403, 403,     LOGIN),
    ("audit_xlsx", _):          (403,     403, 403, 403, 200,       403, 403, 403,     LOGIN),
    ("export_audit", _):        (403,     403, 403, 403, 302,       403, 403, 403,     LOGIN),
    ("export_changes", _):      (302,     302, 302, 302, 302,       302, 302, 302,     LOGIN),
    ("export_job", "own"):      (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("export_job", "other"):    (404,     404, 404, 404, 404,       404, 404, 404,     LOGIN),
    ("export_download", "own"): (409,     409, 409, 409, 409,       409, 409, 409,     LOGIN),
    ("export_download", "other"): (404,   404, 404, 404, 404,       404, 404, 404,     LOGIN),
    ("kpis", _):                (403,     403, 403, 403, 200,       200, 200, 403,     LOGIN),
    ("kpi_csv", _):             (403,     403, 403, 403, 200,       200, 200, 403,     LOGIN),
    ("evidence", "own"):        (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("evidence", "other"):      (404,     404, 404, 404, 200,       404, 404, 404,     LOGIN),
    ("mfa", _):                 (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("mfa_enrol", _):           (200,     200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("mfa_enrol_post", _):      (400,     400, 400, 400, 400,       400, 400, 400,     LOGIN),
    ("mfa_verify", _):          (302,     302, 302, 302, 302,       302, 302, 302,     LOGIN),
    ("mfa_verify_post", _):     (302,     302, 302, 302, 302,       302, 302, 302,     LOGIN),
    ("mfa_recovery", _):        (403,     403, 403, 403, 403,       403, 403, 403,     LOGIN),
}
# fmt: on
CASES = [
    pytest.param(name, whose, role, expected, id=f"{name}-{whose or 'any'}-{role}")
    for (name, whose), statuses in MATRIX.items()
    for role, expected in zip(ROLES, statuses, strict=True)
]


@pytest.fixture(scope="module")
def world(people, module_rows):
    """A change in our tenant, one in the other, a verification, and a job of someone
    else's, made once for the module; ``outsider`` sees only the other tenant, so "own"
    for them is that one."""
    with module_rows.make():
        ours = ChangeRequestFactory(
            title="Ours",
            requester=people.make_user("owner", ["REQUESTER"]),
            tenants=[people.tenant],
        )
        theirs = ChangeRequestFactory(
            title="Theirs",
            requester=people.make_user("their-owner", ["REQUESTER"], tenants=[people.other_tenant]),
            tenants=[people.other_tenant],
        )
        verification = ChainVerification.objects.create(
            requested_by=people.user("compliance"), status="DONE", intact=True
        )
        stranger = people.make_user("stranger-auditor", ["COMPLIANCE"])
        others_job = ExportJob.objects.create(exporter="audit", format="csv", requested_by=stranger)
    return {"ours": ours, "theirs": theirs, "verification": verification, "others_job": others_job}


def _writes() -> tuple:
    return (
        ExportJob.objects.count(),
        ChainVerification.objects.count(),
        RecoveryDevice.objects.count(),
        AuditEvent.objects.exclude(outcome=AuditEvent.Outcome.DENIED)
        .exclude(action__in=["auth.login"])
        .count(),
    )


@pytest.mark.parametrize("name, whose, role, expected", CASES)
def test_permission_matrix(client, people, world, name, whose, role, expected):
    endpoint = ENDPOINTS[name]
    user = people.user(role)
    obj = ""
    if name == "verification":
        obj = world["verification"].pk
    elif name == "evidence":
        outsider = role == "outsider"
        obj = world["theirs" if (whose == "own") == outsider else "ours"].pk
    elif name.startswith("export_") and whose:
        if whose == "own" and user is not None:
            obj = ExportJob.objects.create(exporter="changes", format="csv", requested_by=user).pk
        else:
            obj = world["others_job"].pk
    if user is not None:
        client.force_login(user)
    before = _writes()

    call = getattr(client, endpoint.method)
    response = call(endpoint.path.format(obj=obj), endpoint.data or {})

    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code == expected, response.content[:300]
    if expected in (LOGIN, 400, 403, 404, 409):
        assert _writes() == before, "a refused request wrote something"
    if expected in (403, 404) and user is not None:
        assert AuditEvent.objects.filter(outcome=AuditEvent.Outcome.DENIED, user=user).exists()
