"""Registering targets, the write-only encrypted password and "Test connection"."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse

from dbops.connections import TargetUnavailable, connect
from dbops.models import DatabaseTarget
from portal.models import AuditEvent, Component
from tests.dbops.conftest import SECRET

pytestmark = pytest.mark.django_db


def _target_form(target_db, **overrides):
    data = {
        "name": "billing-db",
        "host": target_db.server.host,
        "port": target_db.server.port,
        "database": target_db.name,
        "user": target_db.server.user,
        "password": SECRET,
        "sslmode": "disable",
        "connections_threshold_percent": 80,
        "is_active": "on",
    }
    data.update(overrides)
    return data


def _audit_text() -> str:
    return " ".join(
        f"{e.action} {e.object_id} {e.details}" for e in AuditEvent.objects.order_by("sequence")
    )


def test_an_admin_registers_a_target_with_an_encrypted_password(client, superuser, target_db):
    client.force_login(superuser)

    response = client.post(reverse("dbops:create"), _target_form(target_db))

    target = DatabaseTarget.objects.get(name="billing-db")
    assert response.status_code == 302
    assert response["Location"] == reverse("dbops:target", args=[target.pk])
    assert SECRET not in target.password_encrypted
    assert target.get_password() == SECRET
    assert target.component.kind == Component.Kind.DATABASE
    assert target.component.name == "billing-db (PostgreSQL)"
    event = AuditEvent.objects.get(action="dbops.target.created")
    assert event.details["password_stored"] is True
    assert SECRET not in _audit_text()


def test_the_password_is_never_shown_back(client, superuser, target):
    client.force_login(superuser)

    pages = [
        reverse("dbops:targets"),
        reverse("dbops:target", args=[target.pk]),
        reverse("dbops:edit", args=[target.pk]),
        reverse("dbops:queries", args=[target.pk]),
        reverse("admin:dbops_databasetarget_change", args=[target.pk]),
        reverse("admin:dbops_databasetarget_changelist"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert SECRET not in response.content.decode(), url
        assert target.password_encrypted not in response.content.decode(), url


def test_editing_without_a_password_keeps_the_stored_one(client, superuser, target, target_db):
    client.force_login(superuser)

    response = client.post(
        reverse("dbops:edit", args=[target.pk]),
        _target_form(target_db, name="claims-db", password="", connections_threshold_percent=70),
    )

    target.refresh_from_db()
    assert response.status_code == 302
    assert target.get_password() == SECRET
    assert target.connections_threshold_percent == 70
    event = AuditEvent.objects.get(action="dbops.target.updated")
    assert event.details["fields"] == ["connections_threshold_percent"]


def test_a_new_password_replaces_the_old_and_is_audited_by_name_only(
    client, superuser, target, target_db
):
    client.force_login(superuser)

    client.post(
        reverse("dbops:edit", args=[target.pk]),
        _target_form(target_db, name="claims-db", password="n3w-Secret-value"),
    )

    target.refresh_from_db()
    assert target.get_password() == "n3w-Secret-value"
    assert "password" in AuditEvent.objects.get(action="dbops.target.updated").details["fields"]
    assert "n3w-Secret-value" not in _audit_text()


def test_the_admin_form_is_write_only_and_goes_through_the_service(client, superuser, target_db):
    client.force_login(superuser)

    add = client.get(reverse("admin:dbops_databasetarget_add"))
    response = client.post(
        reverse("admin:dbops_databasetarget_add"), _target_form(target_db, name="admin-db")
    )

    assert add.status_code == 200
    assert 'type="password"' in add.content.decode()
    assert response.status_code == 302
    target = DatabaseTarget.objects.get(name="admin-db")
    assert target.get_password() == SECRET
    assert AuditEvent.objects.filter(action="dbops.target.created").count() == 1
    change = client.get(reverse("admin:dbops_databasetarget_change", args=[target.pk]))
    assert SECRET not in change.content.decode()


def test_operators_may_not_register_targets(client, operator, target_db):
    client.force_login(operator)

    response = client.post(reverse("dbops:create"), _target_form(target_db))

    assert response.status_code == 403
    assert not DatabaseTarget.objects.exists()


def test_a_bad_form_gets_a_clear_message(client, superuser, target_db):
    client.force_login(superuser)

    response = client.post(
        reverse("dbops:create"), _target_form(target_db, port="99999", sslmode="sometimes")
    )

    assert response.status_code == 400
    assert "Ensure this value is less than or equal to 65535" in response.content.decode()
    assert not DatabaseTarget.objects.exists()


# --- test connection ------------------------------------------------------------------------


def test_test_connection_reports_version_and_a_missing_pg_stat_statements(client, operator, target):
    client.force_login(operator)

    response = client.post(reverse("dbops:check", args=[target.pk]), follow=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert "PostgreSQL 1" in page
    assert "not created" in page
    target.refresh_from_db()
    assert target.last_check["ok"] is True
    assert target.last_check["statements"]["state"] in ("not_created", "missing")
    event = AuditEvent.objects.get(action="dbops.target.checked")
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.role == "OPERATIONS"


def test_test_connection_reports_pg_stat_statements_available(
    client, operator, make_target, statements_db
):
    target = make_target()
    client.force_login(operator)

    response = client.post(reverse("dbops:check", args=[target.pk]), HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="connection-check"' in page
    assert "available (version 1." in page
    assert target.__class__.objects.get(pk=target.pk).last_check["server_version_num"] >= 150000


def test_test_connection_names_missing_monitoring_privileges(
    client, operator, make_target, target_db
):
    role = f"mon_{target_db.name[-12:]}"
    target_db.run(
        f"CREATE ROLE {role} LOGIN",
        "CREATE TABLE owned_by_postgres (id int)",
    )
    try:
        target = make_target(user=role)
        client.force_login(operator)

        client.post(reverse("dbops:check", args=[target.pk]))

        target.refresh_from_db()
        missing = " ".join(target.last_check["missing"])
        assert "pg_monitor" in missing
        assert "ownership of 1 table(s)" in missing
        assert "public.owned_by_postgres" in missing
    finally:
        target_db.run(f"DROP OWNED BY {role}", f"DROP ROLE {role}")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"user": "no_such_role_x"}, "refused the login", id="wrong-login"),
        pytest.param({"port": 1}, "connection refused", id="unreachable"),
        pytest.param({"database": "no_such_database_x"}, "refused the login", id="wrong-db"),
    ],
)
def test_a_failed_connection_gets_a_clear_message_never_a_500(
    client, operator, make_target, caplog, overrides, expected
):
    target = make_target(**overrides)
    client.force_login(operator)
    caplog.set_level(logging.DEBUG)

    check = client.post(reverse("dbops:check", args=[target.pk]), follow=True)
    health = client.get(reverse("dbops:target", args=[target.pk]))
    queries = client.get(reverse("dbops:queries", args=[target.pk]))

    for response in (check, health, queries):
        assert response.status_code == 200
        assert expected in response.content.decode()
        assert SECRET not in response.content.decode()
    event = AuditEvent.objects.get(action="dbops.target.checked")
    assert event.outcome == AuditEvent.Outcome.FAILURE
    assert expected in event.details["error"]
    assert SECRET not in _audit_text()
    assert SECRET not in caplog.text


def test_a_password_encrypted_under_a_retired_key_still_decrypts(settings, target):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]

    assert DatabaseTarget.objects.get(pk=target.pk).get_password() == SECRET


def test_a_password_under_an_unknown_key_is_a_clear_connection_failure(settings, target):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(TargetUnavailable, match="enter the password again"):
        with connect(DatabaseTarget.objects.get(pk=target.pk)):
            pass


def test_connections_name_the_portal_and_run_in_autocommit(target):
    with connect(target) as conn:
        name = conn.execute("SHOW application_name").fetchone()[0]
        timeout = conn.execute("SHOW statement_timeout").fetchone()[0]
        assert conn.autocommit is True
    with connect(target, autocommit=False) as conn:
        assert conn.autocommit is False

    assert name == "change-portal"
    assert timeout == "15s"


def test_deleting_a_target_in_the_admin_is_audited_and_keeps_the_component(
    client, superuser, target
):
    client.force_login(superuser)
    url = reverse("admin:dbops_databasetarget_delete", args=[target.pk])

    response = client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not DatabaseTarget.objects.filter(pk=target.pk).exists()
    assert Component.objects.filter(pk=target.component_id).exists()
    assert AuditEvent.objects.get(action="dbops.target.deleted").details["name"] == "claims-db"
