"""Every security URL, as every role, on a component of the user's own tenant or
another's: the page rule (Security, Compliance, Operations) answers 403 first, a
component of a tenant the user may not see answers 404 (Compliance sees all), acting
(import, refresh, propose) is for Security and Operations; nothing is written on a
refusal, and each refusal is audited."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from changes.models import ChangeRequest
from maintenance.security import advisories
from maintenance.security.inventory import inventory_refresh
from maintenance.security.models import Advisory, ComponentExecutor, Exposure, VersionChange
from portal.models import AuditEvent
from tests.maintenance.security_support import (
    executor_for,
    osv_bytes,
    osv_record,
    write_executables,
)
from tests.matrix import LOGIN, ROLES

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Endpoint:
    url_name: str
    method: str
    target: str  # "", "advisory", "component", "exposure"


ENDPOINTS = {
    "compliance": Endpoint("maintenance:security:compliance", "get", ""),
    "csv": Endpoint("maintenance:security:compliance_csv", "get", ""),
    "advisories": Endpoint("maintenance:security:advisories", "get", ""),
    "upload": Endpoint("maintenance:security:advisories", "post", ""),
    "advisory": Endpoint("maintenance:security:advisory", "get", "advisory"),
    "component": Endpoint("maintenance:security:component", "get", "component"),
    "refresh": Endpoint("maintenance:security:component_refresh", "post", "component"),
    "propose": Endpoint("maintenance:security:propose", "post", "exposure"),
}
_ = None
# fmt: off
MATRIX = {
    # endpoint, whose    requester eng  ops  sec  compliance cto  ciso outsider anonymous
    ("compliance", _):   (403,      403, 200, 200, 200,       403, 403, 200,     LOGIN),
    ("csv", _):          (403,      403, 200, 200, 200,       403, 403, 200,     LOGIN),
    ("advisories", _):   (403,      403, 200, 200, 200,       403, 403, 200,     LOGIN),
    ("upload", _):       (403,      403, 302, 302, 403,       403, 403, 302,     LOGIN),
    ("advisory", _):     (403,      403, 200, 200, 200,       403, 403, 200,     LOGIN),
    ("component", "own"):   (403,   403, 200, 200, 200,       403, 403, 200,     LOGIN),
    ("component", "other"): (403,   403, 404, 404, 200,       403, 403, 404,     LOGIN),
    ("refresh", "own"):     (403,   403, 302, 302, 403,       403, 403, 302,     LOGIN),
    ("refresh", "other"):   (403,   403, 404, 404, 403,       403, 403, 404,     LOGIN),
    ("propose", "own"):     (403,   403, 302, 302, 403,       403, 403, 302,     LOGIN),
    ("propose", "other"):   (403,   403, 404, 404, 403,       403, 403, 404,     LOGIN),
}
# fmt: on
assert {endpoint for endpoint, _ in MATRIX} == set(ENDPOINTS), "an endpoint has no row"

CASES = [
    pytest.param(endpoint, whose, role, expected, id=f"{endpoint}-{whose or 'page'}-{role}")
    for (endpoint, whose), row in MATRIX.items()
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.fixture(scope="module")
def scripts_dir(tmp_path_factory):
    return str(
        write_executables(
            tmp_path_factory.mktemp("scripts"),
            {"inv.sh": '#!/bin/sh\necho "tinypkg==1.0"\n', "noop.sh": "#!/bin/sh\n"},
        )
    )


@pytest.fixture(scope="module")
def made(people, module_rows, scripts_dir):
    """Both tenants' script components, inventoried, and one advisory: made once."""
    config = {"ecosystem": "PyPI", "discover": "inv.sh", "backup": "noop.sh", "patch": "noop.sh",
              "verify": "noop.sh", "rollback": "noop.sh"}  # fmt: skip
    made = {}
    with module_rows.make(), override_settings(MAINTENANCE_SCRIPTS_DIR=scripts_dir):
        for key, on in (("acme", people.tenant), ("globex", people.other_tenant)):
            row = executor_for(f"{key}-api", "script", config, tenants=[on])
            inventory_refresh(executor=row)
            made[key] = row
        advisories.advisories_import(
            data=osv_bytes(
                osv_record("GHSA-tiny-0001-abcd", ecosystem="PyPI", name="tinypkg", fixed="1.1")
            ),
            name="tiny.json",
        )
    return made


@pytest.fixture
def components(made, scripts_dir, settings):
    settings.MAINTENANCE_SCRIPTS_DIR = scripts_dir  # "refresh" runs the inventory script
    return made


def _snapshot() -> tuple:
    return (
        ChangeRequest.objects.count(),
        Advisory.objects.count(),
        list(ComponentExecutor.objects.order_by("pk").values_list("pk", "last_refreshed_at")),
        VersionChange.objects.count(),
        # Reading the CSV is itself recorded (who exported what); refusals are DENIED rows.
        AuditEvent.objects.exclude(outcome="DENIED")
        .exclude(action="security.compliance_exported")
        .count(),
    )


@pytest.mark.parametrize(("endpoint", "whose", "role", "expected"), CASES)
def test_permission_matrix(client, people, components, endpoint, whose, role, expected):
    spec = ENDPOINTS[endpoint]
    user = people.user(role)
    home, away = ("globex", "acme") if role == "outsider" else ("acme", "globex")
    row = components[home if whose == "own" else away]
    args = []
    if spec.target == "advisory":
        args = [Advisory.objects.get().pk]
    elif spec.target == "component":
        args = [row.pk]
    elif spec.target == "exposure":
        args = [Exposure.objects.get(executor=row).pk]
    data = {}
    if endpoint == "upload":
        record = osv_record("GHSA-new1-0002-abcd", ecosystem="PyPI", name="tinypkg", fixed="1.2")
        data = {"file": SimpleUploadedFile("new.json", osv_bytes(record))}
    if user is not None:
        client.force_login(user)
    before = _snapshot()
    denied_before = AuditEvent.objects.filter(outcome="DENIED").count()

    response = getattr(client, spec.method)(reverse(spec.url_name, args=args), data)

    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(f"{reverse('login')}?next=")
    else:
        assert response.status_code == expected, response.content.decode()[:500]
    if expected in (403, 404, LOGIN) or spec.method == "get":
        assert _snapshot() == before, "a refused or read-only request wrote something"
    if expected == 403:
        assert AuditEvent.objects.filter(outcome="DENIED").count() == denied_before + 1
    if expected == 302:
        if endpoint == "upload":
            assert Advisory.objects.filter(osv_id="GHSA-new1-0002-abcd").exists()
        elif endpoint == "refresh":
            row.refresh_from_db()
            assert row.last_refreshed_at != dict(before[2])[row.pk]
        elif endpoint == "propose":
            change = ChangeRequest.objects.get()
            assert (change.requester, change.type) == (user, "SECURITY")
    if endpoint in ("compliance", "csv", "advisory") and expected == 200:
        body = b"".join(response.streaming_content) if endpoint == "csv" else response.content
        text = body.decode()
        assert f"{home}-api" in text
        assert (f"{away}-api" in text) == (role == "compliance")


def test_the_nav_shows_patch_compliance_to_its_roles_only(client, security, requester):
    client.force_login(security)
    shown = client.get(reverse("portal:dashboard")).content.decode()
    client.force_login(requester)
    hidden = client.get(reverse("portal:dashboard")).content.decode()

    assert reverse("maintenance:security:compliance") in shown
    assert reverse("maintenance:security:compliance") not in hidden
