"""The procedure form offers and accepts only the database targets a user may use, the
rule of the target pages (issue 8, item 2): a hidden target is not listed, posting its
id is refused with 403 and audited, the portal never connects to it, lists none of its
tables, and attaches nothing to the change.

Before the fix a REQUESTER who got 403 on ``/dbops/targets/<id>/`` saw that target in
the form, posted its id, got its table names with dead-row counts (the portal connected
to it), and attached ANALYZE to their change.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.urls import reverse
from psycopg import sql

from maintenance.models import ChangeProcedure
from portal.models import AuditEvent
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db(transaction=True)

HIDDEN_TABLE = "globex_patient_claims"
VISIBLE_TABLE = "acme_claims"


@pytest.fixture
def globex_db(pg_server):
    """A second database on the test server, holding the other tenant's data."""
    name = f"dbops_g_{uuid.uuid4().hex[:12]}"
    with pg_server.connect("postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with pg_server.connect(name) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(HIDDEN_TABLE)))
    yield name
    with pg_server.connect("postgres") as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def targets(make_target, target_db, globex_db, tenant, other_tenant):
    target_db.run(
        sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(VISIBLE_TABLE)).as_string()
    )
    return {
        "acme": make_target(name="acme-db", tenants=[tenant]),
        "globex": make_target(name="globex-db", tenants=[other_tenant], database=globex_db),
    }


def _sessions(pg_server, database: str) -> int:
    """Sessions ever opened to ``database`` (pg_stat_database.sessions), read from
    another database so the reading itself does not count."""
    with pg_server.connect("postgres") as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", [database]
        ).fetchone()[0]


def _sessions_reach(pg_server, database: str, at_least: int, timeout: float = 15.0) -> int:
    """A closed session reaches the statistics when its backend exits: poll for it."""
    deadline = time.monotonic() + timeout
    while True:
        seen = _sessions(pg_server, database)
        if seen >= at_least or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def _add_url(change, **query) -> str:
    url = reverse("maintenance:procedure_add", args=[change.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.mark.parametrize("role", ["requester", "operator"])
def test_a_hidden_target_is_not_offered_and_posting_it_is_refused(
    client, request, role, targets, pg_server, globex_db, superuser, tenant
):
    user = request.getfixturevalue(role)
    change = ChangeRequestFactory(requester=user, tenants=[tenant], title="Tidy claims")
    hidden = targets["globex"]
    client.force_login(user)

    form = client.get(_add_url(change, kind="db_analyze")).content.decode()
    assert f'value="{hidden.pk}"' not in form and "globex-db" not in form
    # The requester may use no target at all; an operator of one tenant only theirs.
    assert ("acme-db" in form) == (role == "operator")

    before = _sessions(pg_server, globex_db)
    response = client.post(
        _add_url(change),
        {"kind": "db_analyze", "target": hidden.pk, "tables": f"public.{HIDDEN_TABLE}"},
    )
    probe = client.get(_add_url(change, kind="db_analyze", target=hidden.pk))

    assert response.status_code == 403
    assert "You may not use that database target." in response.content.decode()
    assert HIDDEN_TABLE not in response.content.decode()
    assert HIDDEN_TABLE not in probe.content.decode()
    assert not ChangeProcedure.objects.filter(change=change).exists()
    denied = AuditEvent.objects.get(action="change.procedure_refused")
    assert denied.outcome == "DENIED" and denied.username == user.username
    assert denied.details["target"] == hidden.pk
    # Nothing connected to the hidden database: a superuser's look at it afterwards is
    # the only session it has seen since.
    client.force_login(superuser)
    listed = client.get(_add_url(change, kind="db_analyze", target=hidden.pk)).content.decode()
    assert HIDDEN_TABLE in listed
    assert _sessions_reach(pg_server, globex_db, before + 1) == before + 1


def test_the_visible_target_lists_its_tables(client, operator, targets, tenant):
    change = ChangeRequestFactory(requester=operator, tenants=[tenant])
    client.force_login(operator)

    page = client.get(_add_url(change, kind="db_analyze", target=targets["acme"].pk))

    assert page.status_code == 200
    assert f"public.{VISIBLE_TABLE}" in page.content.decode()


def test_an_unknown_target_id_is_a_form_error_not_a_refusal(client, operator, targets, tenant):
    change = ChangeRequestFactory(requester=operator, tenants=[tenant])
    client.force_login(operator)

    response = client.post(
        _add_url(change), {"kind": "db_analyze", "target": 987654, "tables": "public.x"}
    )

    assert response.status_code == 400
    assert not ChangeProcedure.objects.filter(change=change).exists()
    assert not AuditEvent.objects.filter(action="change.procedure_refused").exists()
