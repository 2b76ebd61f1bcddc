"""The seed's applySecurityUpdates loop with allow-listed scripts as the executor: updates
run in order; a failed backup means no patch is tried; a failing verification rolls that
component back; one failing component never stops the next; each result is recorded and
shown on the run page and in the report."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from changes.models import ChangeRequest
from maintenance.models import MaintenanceExecution
from maintenance.security.inventory import inventory_refresh
from maintenance.security.models import ComponentBackup, UpdateResult
from tests.maintenance.execution_helpers import approved_change, calm_calendar, with_procedure
from tests.maintenance.security_support import executor_for, run_now

pytestmark = pytest.mark.django_db(transaction=True)

HERE = 'here="$(dirname "$0")"\n'
SCRIPTS = {
    # One discover script per component: it prints the version its state file holds.
    **{
        f"inv_{pkg}.sh": f'#!/bin/sh\n{HERE}echo "{pkg}==$(cat "$here/{pkg}.version")"\n'
        for pkg in ("openssl", "libcache", "libqueue")
    },
    "backup_fail.sh": f'#!/bin/sh\n{HERE}echo "backup $1" >> "$here/ran.log"\n'
    'echo "No space left on the backup volume" >&2\nexit 5\n',
    "backup.sh": f'#!/bin/sh\n{HERE}echo "backup $1 $2" >> "$here/ran.log"\n'
    'cp "$here/$1.version" "$3"\necho "saved $1 $2"\n',
    "patch.sh": f'#!/bin/sh\n{HERE}echo "patch $1 $2 $3" >> "$here/ran.log"\n'
    'printf "%s\\n" "$2" > "$here/$1.version"\necho "applied $3"\n',
    # Works at every version but 2.0, which the verification must catch.
    "verify.sh": f'#!/bin/sh\n{HERE}echo "verify $1 $2" >> "$here/ran.log"\n'
    'test "$2" != "2.0" || { echo "service answers 500 at $2"; exit 1; }\n',
    "rollback.sh": f'#!/bin/sh\n{HERE}echo "rollback $1 $2" >> "$here/ran.log"\n'
    'cp "$3" "$here/$1.version"\n',
}


@pytest.fixture
def scripts(tmp_path, settings) -> Path:
    calm_calendar()
    directory = tmp_path / "scripts"
    directory.mkdir()
    for name, body in SCRIPTS.items():
        (directory / name).write_text(body)
        (directory / name).chmod(0o755)
    for pkg, version in (("openssl", "3.0.1"), ("libcache", "1.0"), ("libqueue", "1.0")):
        (directory / f"{pkg}.version").write_text(version + "\n")
    settings.MAINTENANCE_SCRIPTS_DIR = str(directory)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return directory


def _component(name: str, package: str, *, backup: str = "backup.sh"):
    row = executor_for(
        name,
        "script",
        {
            "discover": f"inv_{package}.sh",
            "backup": backup,
            "patch": "patch.sh",
            "verify": "verify.sh",
            "rollback": "rollback.sh",
            "timeout_seconds": 30,
        },
    )
    inventory_refresh(executor=row)
    return row


def _ran(scripts: Path) -> list[str]:
    log = scripts / "ran.log"
    return log.read_text().splitlines() if log.exists() else []


def test_one_failing_component_does_not_stop_the_next_and_each_result_is_recorded(
    client, scripts, requester, operator, tenant
):
    edge = _component("edge-proxy", "openssl", backup="backup_fail.sh")
    cache = _component("cache", "libcache")
    queue = _component("queue", "libqueue")
    change = approved_change(requester, tenant, edge.component, title="Three updates")
    change.components.add(cache.component, queue.component)
    change = with_procedure(
        change,
        requester,
        "security_update",
        updates="edge-proxy | openssl | 3.0.2\ncache | libcache | 1.1\nqueue | libqueue | 2.0",
        patches=(
            "openssl | CVE-2099-1000 | CRITICAL | Heap overflow in the TLS handshake\n"
            "libcache | CVE-2099-2000 | HIGH | Cache poisoning\n"
            "libcache | CVE-2099-2001 | LOW | Timing leak\n"
            "libqueue | GHSA-qqqq-wwww-eeee | MEDIUM | Queue starvation"
        ),
        timeout_minutes="5",
    )

    run = run_now(change, operator)

    results = list(UpdateResult.objects.filter(run=run).order_by("position"))
    assert [(r.component.name, r.status, r.failed_step) for r in results] == [
        ("edge-proxy", "FAILED", "BACKUP"),
        ("cache", "SUCCESS", ""),
        ("queue", "ROLLED_BACK", "VERIFY"),
    ]
    assert "backup_fail.sh exited with status 5" in results[0].error
    assert "No space left" in results[0].output
    assert results[0].backup is None
    assert [(r.version_before, r.version_after) for r in results] == [
        ("3.0.1", "3.0.1"),
        ("1.0", "1.1"),
        ("1.0", "1.0"),
    ]
    assert _ran(scripts) == [
        # A failed backup means no patch was tried on edge-proxy.
        "backup openssl",
        "backup libcache 1.0",
        "patch libcache 1.1 CVE-2099-2000",
        "patch libcache 1.1 CVE-2099-2001",
        "verify libcache 1.1",
        "backup libqueue 1.0",
        "patch libqueue 2.0 GHSA-qqqq-wwww-eeee",
        "verify libqueue 2.0",
        "rollback libqueue 1.0",
        "verify libqueue 1.0",
    ]
    assert (scripts / "libqueue.version").read_text().strip() == "1.0"
    backups = ComponentBackup.objects.filter(run=run).order_by("created_at")
    assert [b.component.name for b in backups] == ["cache", "queue"]
    assert all(len(b.sha256) == 64 and b.size_bytes > 0 for b in backups)
    # Steps: one per component, each with its own status; the run failed as a whole.
    steps = list(
        run.steps.filter(kind="STEP").order_by("position").values_list("status", flat=True)
    )
    assert steps == ["FAILED", "SUCCEEDED", "FAILED"]
    assert run.status == "FAILED"
    assert "edge-proxy" in run.error and "queue" in run.error
    assert ChangeRequest.objects.get(pk=change.pk).state == "failed"

    client.force_login(operator)
    page = client.get(reverse("maintenance:run", args=[run.pk])).content.decode()
    report = client.get(
        reverse("maintenance:report", args=[MaintenanceExecution.objects.get().window_id])
    ).content.decode()
    for html in (page, report):
        assert 'data-testid="security-results"' in html
        assert "ROLLED_BACK" in html and "BACKUP" in html
        assert backups[0].sha256 in html


def test_a_component_already_at_the_target_is_left_alone(scripts, requester, operator, tenant):
    cache = _component("cache", "libcache")
    change = with_procedure(
        approved_change(requester, tenant, cache.component, title="cache 1.1"),
        requester,
        "security_update",
        updates="cache | libcache | 1.1",
        timeout_minutes="5",
    )
    (scripts / "libcache.version").write_text("1.1\n")  # patched by hand in the meantime

    run = run_now(change, operator)

    [result] = run.result["security_updates"]
    assert result["status"] == "SUCCESS"
    assert result["details"]["note"].startswith("already at the target version")
    assert _ran(scripts) == []


def test_a_component_that_drifted_since_approval_is_not_touched(
    scripts, requester, operator, tenant
):
    cache = _component("cache", "libcache")
    change = with_procedure(
        approved_change(requester, tenant, cache.component, title="cache 1.1"),
        requester,
        "security_update",
        updates="cache | libcache | 1.1",
        timeout_minutes="5",
    )
    (scripts / "libcache.version").write_text("0.9\n")

    run = run_now(change, operator)

    [result] = run.result["security_updates"]
    assert (result["status"], result["failed_step"]) == ("FAILED", "PREPARE")
    assert "written for 1.0; nothing was changed" in result["error"]
    assert _ran(scripts) == []


def test_a_component_outside_the_change_s_impact_stops_the_run_before_anything(
    scripts, requester, operator, tenant
):
    cache = _component("cache", "libcache")
    change = with_procedure(
        approved_change(requester, tenant, cache.component, title="cache 1.1"),
        requester,
        "security_update",
        updates="cache | libcache | 1.1",
        timeout_minutes="5",
    )
    change.components.clear()
    change.components.add(_component("queue", "libqueue").component)

    run = run_now(change, operator)

    assert run.status == "FAILED"
    assert "Not in the change's impact" in run.error
    assert _ran(scripts) == []
    assert not UpdateResult.objects.exists()
