"""Bad input is refused with a message that says what is wrong, and nothing is written:
an unknown component, a target version nobody can install, a file that is not OSV
JSON, an environment or a command outside the allow-lists, malformed update lines."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from changes.models import ChangeRequest
from maintenance.models import ChangeProcedure
from maintenance.security.models import Advisory, ComponentExecutor
from maintenance.security.services import component_executor_register
from maintenance.services import change_procedure_add
from portal.errors import Invalid
from portal.models import AuditEvent
from tests.factories import ChangeRequestFactory, ComponentFactory
from tests.maintenance.security_support import (  # noqa: F401  (a fixture)
    copy_environment,
    environment_template,
    executor_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def envs(tmp_path, settings, environment_template):  # noqa: F811
    wheels, template = environment_template
    directory = tmp_path / "environments"
    directory.mkdir()
    settings.SECURITY_ENVIRONMENTS_DIR = str(directory)
    settings.SECURITY_WHEEL_DIR = str(wheels)
    copy_environment(template, directory / "billing-api")
    return directory


@pytest.fixture
def billing(envs):
    return executor_for("billing-api", "python_environment", {"environment": "billing-api"})


@pytest.fixture
def draft(requester, tenant, billing):
    return ChangeRequestFactory(
        requester=requester, tenants=[tenant], components=[billing.component], type="SECURITY"
    )


def _written() -> tuple:
    return (
        ChangeProcedure.objects.count(),
        ComponentExecutor.objects.count(),
        Advisory.objects.count(),
        AuditEvent.objects.exclude(outcome="DENIED").count(),
    )


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"updates": "nope | tinypkg | 1.1"}, "unknown component 'nope'"),
        ({"updates": "billing-api | tinypkg | 9.9"}, "tinypkg 9.9 is not available from the wheel"),
        ({"updates": "billing-api | tinypkg | 0.5"}, "the target 0.5 is not newer"),
        (
            {"updates": "billing-api | left-pad | 1.1"},
            "left-pad is not installed in the environment",
        ),
        ({"updates": "billing-api | tinypkg"}, "write it as component | package | target version"),
        ({"updates": ""}, "This field is required"),
        (
            {
                "updates": "billing-api | tinypkg | 1.1",
                "patches": "requests | CVE-2099-1 | HIGH | x",
            },
            "'requests' is not the package of one of the updates",
        ),
        (
            {
                "updates": "billing-api | tinypkg | 1.1",
                "patches": "tinypkg | CVE-2099-1 | SEVERE | x",
            },
            "severity is CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN",
        ),
        (
            {"updates": "billing-api | tinypkg | 1.1", "sql_checks": "tinypkg | 1 | SELECT 1"},
            "does not run SQL checks",
        ),
        (
            {
                "updates": "billing-api | tinypkg | 1.1",
                "commands": "tinypkg | /bin/sh -c 'rm -rf /'",
            },
            "is neither a program in billing-api/bin nor an allow-listed script",
        ),
        (
            {"updates": "\n".join(["billing-api | tinypkg | 1.1"] * 21)},
            "At most 20 updates",
        ),
    ],
)
def test_a_bad_security_update_is_refused_with_its_reason(draft, requester, fields, says):
    before = _written()

    with pytest.raises(Invalid) as refused:
        change_procedure_add(
            change=draft,
            by=requester,
            kind="security_update",
            params={"timeout_minutes": "10", **fields},
        )

    assert says in refused.value.message
    assert _written() == before


def test_the_add_a_procedure_page_shows_the_reason_and_answers_400(client, draft, requester):
    client.force_login(requester)
    before = _written()

    response = client.post(
        reverse("maintenance:procedure_add", args=[draft.pk]),
        {"kind": "security_update", "updates": "nope | tinypkg | 1.1", "timeout_minutes": "10"},
    )

    assert response.status_code == 400
    assert "unknown component &#x27;nope&#x27;" in response.content.decode()
    assert _written() == before


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"<xml/>", "is not JSON"),
        (b'{"bomFormat": "CycloneDX", "components": []}', "has no OSV 'id'"),
        (b'{"id": "GHSA-aaaa-bbbb-cccc", "modified": "2024-01-01"}', "has no time zone"),
    ],
)
def test_a_file_that_is_not_osv_json_is_refused_on_upload(client, security, content, says):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(security)
    before = _written()

    response = client.post(
        reverse("maintenance:security:advisories"),
        {"file": SimpleUploadedFile("feed.json", content, content_type="application/json")},
    )

    assert response.status_code == 400
    assert says.replace("'", "&#x27;") in response.content.decode()
    assert _written() == before


@pytest.mark.parametrize("where", ["../elsewhere", "/etc", "linked", ".hidden", "billing-api/bin"])
def test_an_environment_outside_the_allow_list_is_refused(envs, tmp_path, superuser, where):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, envs / "linked")
    before = _written()

    with pytest.raises(Invalid) as refused:
        component_executor_register(
            component=ComponentFactory(name="rogue"),
            kind="python_environment",
            config={"environment": where},
            by=superuser,
        )

    assert "outside the allow-listed environments directory" in refused.value.message
    assert _written() == before


def test_a_health_command_outside_the_environment_and_the_scripts_is_refused(envs, superuser):
    with pytest.raises(Invalid) as refused:
        component_executor_register(
            component=ComponentFactory(name="billing-api-2"),
            kind="python_environment",
            config={"environment": "billing-api", "health_command": "/usr/bin/curl http://x"},
            by=superuser,
        )

    assert (
        "neither a program in billing-api/bin nor an allow-listed script" in refused.value.message
    )
    assert not ComponentExecutor.objects.exists()


def test_the_admin_form_shows_the_executor_s_refusal(client, envs, superuser):
    component = ComponentFactory(name="rogue")
    client.force_login(superuser)

    response = client.post(
        reverse("admin:maintenance_componentexecutor_add"),
        {
            "component": component.pk,
            "kind": "python_environment",
            "config_json": '{"environment": "/etc"}',
            "is_active": "on",
        },
    )

    assert response.status_code == 200
    assert "outside the allow-listed environments directory" in response.content.decode()
    assert not ComponentExecutor.objects.exists()


def test_the_admin_registers_an_executor_through_the_audited_service(client, envs, superuser):
    component = ComponentFactory(name="billing-api-admin")
    client.force_login(superuser)

    response = client.post(
        reverse("admin:maintenance_componentexecutor_add"),
        {
            "component": component.pk,
            "kind": "python_environment",
            "config_json": '{"environment": "billing-api", "health_command": "python -V"}',
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    row = ComponentExecutor.objects.get(component=component)
    assert row.config["health_command"] == ["python", "-V"]
    assert AuditEvent.objects.filter(action="security.executor_registered").exists()


def test_only_administrators_register_executors(envs, operator):
    with pytest.raises(Exception, match="Only administrators"):
        component_executor_register(
            component=ComponentFactory(name="x"),
            kind="python_environment",
            config={"environment": "billing-api"},
            by=operator,
        )
    assert not ChangeRequest.objects.exists() and not ComponentExecutor.objects.exists()
