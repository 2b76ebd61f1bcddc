"""The Python-environment executor on a real virtual environment: a tiny package built
by the test into a wheel directory, updated by pip from there (no network), verified
with pip check, its version and the service's health command, and rolled back from the
copy of the environment when the health command fails."""

from __future__ import annotations

import subprocess

import pytest

from changes.models import ChangeRequest
from maintenance.security.inventory import inventory_refresh
from maintenance.security.models import (
    ComponentBackup,
    InstalledPackage,
    UpdateResult,
    VersionChange,
)
from tests.maintenance.execution_helpers import approved_change, calm_calendar, with_procedure
from tests.maintenance.security_support import (  # noqa: F401  (a fixture)
    copy_environment,
    environment_template,
    executor_for,
    installed_version,
    run_now,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def service_env(tmp_path, settings, environment_template):  # noqa: F811
    calm_calendar()
    wheels, template = environment_template
    envs = tmp_path / "environments"
    envs.mkdir()
    settings.SECURITY_ENVIRONMENTS_DIR = str(envs)
    settings.SECURITY_WHEEL_DIR = str(wheels)
    settings.SECURITY_PACKAGE_INDEX_URL = ""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return copy_environment(template, envs / "billing-api")


@pytest.fixture
def billing(service_env):
    row = executor_for(
        "billing-api",
        "python_environment",
        {"environment": "billing-api", "health_command": "python -m tinypkg.health"},
    )
    inventory_refresh(executor=row)
    return row


def _freeze(env) -> str:
    return subprocess.run(
        [str(env / "bin" / "python"), "-m", "pip", "freeze", "--all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _update_change(requester, tenant, component, target: str) -> ChangeRequest:
    change = approved_change(requester, tenant, component, title=f"tinypkg {target}")
    return with_procedure(
        change,
        requester,
        "security_update",
        updates=f"billing-api | tinypkg | {target}",
        patches="tinypkg | GHSA-tiny-0001-abcd | HIGH | Crafted input crashes the parser",
        timeout_minutes="10",
    )


def test_discovery_records_the_environment_s_packages(billing):
    packages = dict(billing.packages.values_list("name", "version"))

    assert packages["tinypkg"] == "1.0"
    assert "pip" in packages
    assert VersionChange.objects.filter(executor=billing, name="tinypkg", version_after="1.0")


def test_an_environment_is_updated_from_the_wheel_directory_and_verified(
    billing, service_env, requester, operator, tenant
):
    change = _update_change(requester, tenant, billing.component, "1.1")

    run = run_now(change, operator)

    assert run.status == "SUCCEEDED", run.error
    assert installed_version(service_env) == "1.1"
    [result] = run.result["security_updates"]
    assert (result["status"], result["version_before"], result["version_after"]) == (
        "SUCCESS",
        "1.0",
        "1.1",
    )
    verification = result["details"]["verification"]
    assert verification["pip_check"] == "no broken requirements"
    assert verification["health"]["exit_code"] == 0
    backup = ComponentBackup.objects.get(run=run)
    assert backup.kind == "python-environment"
    assert backup.size_bytes > 100_000 and result["backup_sha256"] == backup.sha256
    assert "tinypkg==1.0" in backup.metadata["requirements"]
    row = UpdateResult.objects.get(run=run)
    assert (row.status, row.backup_id, row.patches) == (
        "SUCCESS",
        backup.pk,
        ["GHSA-tiny-0001-abcd"],
    )
    assert InstalledPackage.objects.get(executor=billing, name="tinypkg").version == "1.1"
    assert VersionChange.objects.filter(
        executor=billing, name="tinypkg", version_before="1.0", version_after="1.1", source="UPDATE"
    ).exists()
    assert ChangeRequest.objects.get(pk=change.pk).state == "completed"


def test_a_failing_health_command_rolls_the_environment_back(
    billing, service_env, requester, operator, tenant
):
    before = _freeze(service_env)
    change = _update_change(requester, tenant, billing.component, "1.2")

    run = run_now(change, operator)

    [result] = run.result["security_updates"]
    assert result["status"] == "ROLLED_BACK"
    assert result["failed_step"] == "VERIFY"
    assert "health command exited with status 3" in result["error"]
    assert (result["version_before"], result["version_after"]) == ("1.0", "1.0")
    assert installed_version(service_env) == "1.0"
    assert _freeze(service_env) == before
    assert run.status == "ROLLED_BACK"
    step = run.steps.get(name__startswith="Update billing-api")
    assert step.status == "FAILED"
    assert "tinypkg 1.2 broken" in step.output and "Restored" in step.output
    assert ChangeRequest.objects.get(pk=change.pk).state == "rolled_back"
    # Nothing of the patched environment is left beside the restored one.
    assert [p.name for p in service_env.parent.iterdir()] == ["billing-api"]
