"""OSV advisories imported by upload and from the advisories directory, matched against
the inventory into exposures that open, change and resolve; backups pruned by retention
while their records stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from maintenance.security import advisories, backups, inventory
from maintenance.security.executors.base import BackupFile
from maintenance.security.models import Advisory, ComponentBackup, Exposure, InstalledPackage
from maintenance.security.versions import PG_EXTENSION, PYPI
from portal.models import AuditEvent
from tests.factories import ComponentFactory
from tests.maintenance.security_support import inventoried, osv_bytes, osv_record

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def billing(db):
    return inventoried(
        "billing-api", {(PYPI, "tinypkg"): "1.0", (PYPI, "requests"): "2.32.3"}, since=LONG_AGO
    )


def _import(*records, name="advisory.json", by=None):
    return advisories.advisories_import(data=osv_bytes(*records), name=name, by=by)


def test_an_uploaded_advisory_opens_an_exposure_on_the_affected_component(billing, security):
    summary = _import(
        osv_record("GHSA-tiny-0001-abcd", ecosystem="PyPI", name="TinyPkg", fixed="1.1"),
        by=security,
    )

    assert summary.created == ["GHSA-tiny-0001-abcd"] and summary.components == 1
    [exposure] = Exposure.objects.filter(resolved_at__isnull=True)
    assert (exposure.package, exposure.installed_version, exposure.fixed_version) == (
        "tinypkg",
        "1.0",
        "1.1",
    )
    assert exposure.severity == "HIGH" and exposure.executor == billing
    # Exposed since the advisory was published: the version was there long before.
    assert exposure.exposed_since == datetime(2024, 3, 1, tzinfo=UTC)
    event = AuditEvent.objects.get(action="security.advisories_imported")
    assert event.username == "security" and event.details["created"] == ["GHSA-tiny-0001-abcd"]


def test_a_version_outside_the_ranges_opens_nothing(billing):
    _import(osv_record("GHSA-tiny-0002-abcd", ecosystem="PyPI", name="tinypkg", fixed="0.9"))
    _import(osv_record("GHSA-ext-0003-abcd", ecosystem=PG_EXTENSION, name="tinypkg", fixed="9"))

    assert not Exposure.objects.exists()


def test_a_newer_record_replaces_the_old_one_and_an_older_one_changes_nothing(billing):
    _import(osv_record("GHSA-tiny-0001-abcd", ecosystem="PyPI", name="tinypkg", fixed="1.1"))
    newer = osv_record(
        "GHSA-tiny-0001-abcd",
        ecosystem="PyPI",
        name="tinypkg",
        fixed="1.2",
        severity="CRITICAL",
        modified="2024-05-01T00:00:00Z",
    )
    assert _import(newer).updated == ["GHSA-tiny-0001-abcd"]
    older = osv_record("GHSA-tiny-0001-abcd", ecosystem="PyPI", name="tinypkg", fixed="1.05")
    assert _import(older).unchanged == ["GHSA-tiny-0001-abcd"]

    [exposure] = Exposure.objects.all()
    assert (exposure.fixed_version, exposure.severity) == ("1.2", "CRITICAL")
    assert Advisory.objects.get().packages.count() == 1


def test_an_upgrade_or_a_withdrawal_resolves_the_exposure(billing):
    _import(
        osv_record("GHSA-tiny-0001-abcd", ecosystem="PyPI", name="tinypkg", fixed="1.1"),
        osv_record("GHSA-reqs-0002-abcd", ecosystem="PyPI", name="requests", fixed="2.33.0"),
    )
    assert Exposure.objects.filter(resolved_at__isnull=True).count() == 2

    InstalledPackage.objects.filter(name="tinypkg").update(version="1.1")
    inventory.exposures_refresh(executor=billing)
    withdrawn = osv_record(
        "GHSA-reqs-0002-abcd",
        ecosystem="PyPI",
        name="requests",
        fixed="2.33.0",
        modified="2024-06-01T00:00:00Z",
    )
    withdrawn["withdrawn"] = "2024-06-01T00:00:00Z"
    _import(withdrawn)

    resolutions = dict(Exposure.objects.values_list("package", "resolution"))
    assert resolutions == {"tinypkg": "now at 1.1", "requests": "advisory withdrawn"}
    assert not Exposure.objects.filter(resolved_at__isnull=True).exists()


def test_a_file_of_many_records_is_imported_whole_or_not_at_all(billing):
    good = osv_record("GHSA-tiny-0001-abcd", ecosystem="PyPI", name="tinypkg", fixed="1.1")
    bad = {"id": "GHSA-tiny-0009-abcd", "summary": "no modified time"}

    with pytest.raises(advisories.Invalid) as refused:
        advisories.advisories_import(data=json.dumps([good, bad]).encode(), name="mixed.json")

    assert "mixed.json[1] (GHSA-tiny-0009-abcd): 'modified'" in refused.value.message
    assert not Advisory.objects.exists() and not Exposure.objects.exists()


def test_the_beat_task_imports_the_directory_and_sets_bad_files_aside(billing, tmp_path, settings):
    drop = tmp_path / "advisories"
    drop.mkdir()
    settings.SECURITY_ADVISORIES_DIR = str(drop)
    (drop / "tiny.json").write_bytes(
        osv_bytes(osv_record("PYSEC-2024-77", ecosystem="PyPI", name="tinypkg", fixed="1.1"))
    )
    (drop / "sbom.json").write_text('{"bomFormat": "CycloneDX"}')

    from maintenance.security.tasks import import_advisories

    assert import_advisories() == {"imported": 1, "rejected": 1}

    assert Advisory.objects.get().source == "DIRECTORY"
    assert Exposure.objects.get().advisory.osv_id == "PYSEC-2024-77"
    assert sorted(p.name for p in drop.iterdir()) == ["imported", "rejected"]
    [reason] = (drop / "rejected").glob("*.error.txt")
    assert "sbom.json has no OSV 'id'" in reason.read_text()
    assert AuditEvent.objects.filter(action="security.advisories_rejected").exists()
    # A second pass finds nothing new to read.
    assert import_advisories() == {"imported": 0, "rejected": 0}


def test_old_backup_files_are_pruned_and_their_records_kept(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SECURITY_BACKUP_RETENTION_DAYS = 30
    component = ComponentFactory(name="claims-db")
    made = []
    for name in ("old.dump", "new.dump"):
        local = tmp_path / name
        local.write_bytes(name.encode() * 1000)
        made.append(
            backups.backup_store(
                local=BackupFile(path=local, kind="pg_dump"), component=component, run_id=None
            )
        )
    old, new = made
    ComponentBackup.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))

    assert backups.backups_prune() == 1

    old.refresh_from_db()
    new.refresh_from_db()
    assert old.pruned_at is not None and not default_storage.exists(old.file.name)
    assert (old.sha256, old.size_bytes) == (made[0].sha256, 8000)
    assert new.pruned_at is None and default_storage.exists(new.file.name)
    assert AuditEvent.objects.filter(action="security.backup_pruned").count() == 1
    with pytest.raises(Exception, match="pruned by retention"):
        backups.backup_fetch(old, tmp_path)


def test_a_backup_whose_file_changed_in_storage_is_not_restored(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    local = tmp_path / "env.tar.gz"
    local.write_bytes(b"environment" * 100)
    backup = backups.backup_store(
        local=BackupFile(path=local, kind="python-environment"),
        component=ComponentFactory(name="billing-api"),
        run_id=None,
    )
    with default_storage.open(backup.file.name, "wb") as fh:
        fh.write(b"tampered")

    with pytest.raises(Exception, match="SHA-256 no longer matches"):
        backups.backup_fetch(backup, tmp_path)
