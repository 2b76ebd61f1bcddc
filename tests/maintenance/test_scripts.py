"""Only allow-listed scripts run: traversal and outside paths are refused everywhere."""

from __future__ import annotations

import pytest

from maintenance.procedures import registry
from maintenance.procedures.script import ScriptRefused, available_scripts, resolve_script
from maintenance.services import change_procedure_add
from portal.errors import Invalid
from tests.factories import ChangeRequestFactory


@pytest.fixture
def scripts(tmp_path, settings):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    ok = allowed / "ok.sh"
    ok.write_text("#!/bin/sh\necho ok\n")
    ok.chmod(0o755)
    not_exec = allowed / "plain.sh"
    not_exec.write_text("#!/bin/sh\necho plain\n")
    outside = tmp_path / "evil.sh"
    outside.write_text("#!/bin/sh\necho evil\n")
    outside.chmod(0o755)
    (allowed / "link.sh").symlink_to(outside)
    settings.MAINTENANCE_SCRIPTS_DIR = str(allowed)
    return allowed


@pytest.mark.parametrize(
    "name",
    [
        "../evil.sh",
        "/bin/sh",
        "/etc/passwd",
        "..",
        ".",
        "",
        "sub/ok.sh",
        "link.sh",
        "plain.sh",
        "ok.sh\x00",
        "missing.sh",
        "ok.sh; rm -rf /",
        "$(id)",
    ],
)
def test_it_refuses_anything_but_an_allow_listed_script(scripts, name):
    with pytest.raises(ScriptRefused):
        resolve_script(name)


def test_it_lists_only_runnable_scripts_inside_the_directory(scripts):
    assert available_scripts() == ["ok.sh"]
    assert resolve_script("ok.sh") == scripts / "ok.sh"


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["script", "rollback_script"])
@pytest.mark.parametrize("name", ["../evil.sh", "/bin/sh", "link.sh"])
def test_the_form_refuses_traversal(scripts, requester, tenant, field, name):
    change = ChangeRequestFactory(requester=requester, tenants=[tenant])
    params = {"script": "ok.sh", "timeout_seconds": "30", field: name}
    with pytest.raises(Invalid, match="script"):
        change_procedure_add(change=change, by=requester, kind="maintenance_script", params=params)
    assert not change.procedures.exists()


@pytest.mark.django_db
def test_the_add_procedure_page_answers_400_not_500_for_a_bad_script(
    client, scripts, requester, tenant
):
    from django.urls import reverse

    change = ChangeRequestFactory(requester=requester, tenants=[tenant])
    client.force_login(requester)
    response = client.post(
        reverse("maintenance:procedure_add", args=[change.pk]),
        {"kind": "maintenance_script", "script": "../../bin/sh", "timeout_seconds": "30"},
    )
    assert response.status_code == 400
    assert "allow-listed" in response.content.decode()


def test_a_stored_parameter_pointing_outside_is_refused_at_run_time(scripts):
    procedure = registry.get("maintenance_script")
    from maintenance.procedures.base import RunContext, StepFailed

    ctx = RunContext(
        run_id=1,
        params={"script": "../evil.sh", "timeout_seconds": 5},
        change_id=1,
        window_end=None,
        log=lambda t: None,
        set_progress=lambda p: None,
    )
    with pytest.raises(StepFailed, match="allow-listed"):
        for spec in procedure.prechecks(ctx):
            spec.run(ctx)
