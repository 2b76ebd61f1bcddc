"""The PostgreSQL executor on a real database of the shared server: hstore created at
1.7 with data, updated to 1.8 with a pg_dump backup and verified; a failing
verification step restores the dump, and the old version and the data are back."""

from __future__ import annotations

import subprocess

import pytest

from changes.models import ChangeRequest
from maintenance.models import ChangeProcedure
from maintenance.security.inventory import inventory_refresh
from maintenance.security.models import ComponentBackup, InstalledPackage, UpdateResult
from maintenance.services import change_procedure_add
from portal.errors import Invalid
from tests.maintenance.execution_helpers import approved_change, calm_calendar, with_procedure
from tests.maintenance.security_support import run_now

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [
    (1, '"colour"=>"red", "size"=>"L"'),
    (2, '"colour"=>"blue"'),
    (3, '"colour"=>"green", "fabric"=>"wool"'),
]


@pytest.fixture
def hstore_db(target_db, tmp_path, settings):
    calm_calendar()
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with target_db.connect() as conn:
        conn.execute("CREATE EXTENSION hstore VERSION '1.7'")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, attrs hstore NOT NULL)")
        conn.execute("CREATE INDEX items_attrs ON items USING gist (attrs)")
        for pk, attrs in ROWS:
            conn.execute("INSERT INTO items VALUES (%s, %s::hstore)", [pk, attrs])
    return target_db


@pytest.fixture
def catalog_db(make_target, hstore_db):
    from maintenance.security.executors import get
    from maintenance.security.models import ComponentExecutor

    target = make_target(name="catalog-db")
    config = get("postgresql").clean_config(target.component, {})
    row = ComponentExecutor.objects.create(
        component=target.component, kind="postgresql", config=config
    )
    inventory_refresh(executor=row)
    return row


def _state(db) -> dict:
    with db.connect() as conn:
        return {
            "version": conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'hstore'"
            ).fetchone()[0],
            "rows": conn.execute("SELECT id, attrs::text FROM items ORDER BY id").fetchall(),
            "oid": conn.execute("SELECT 'items'::regclass::oid").fetchone()[0],
            "index": conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'items_attrs'"
            ).fetchone(),
        }


def _change(requester, tenant, row, **params):
    change = approved_change(requester, tenant, row.component, title="hstore 1.8")
    return with_procedure(
        change,
        requester,
        "security_update",
        updates=f"{row.component.name} | hstore | 1.8",
        patches="hstore | CVE-2099-0001 | HIGH | hstore_in reads past its buffer",
        timeout_minutes="10",
        **params,
    )


def test_discovery_reads_the_server_and_its_extensions(catalog_db):
    packages = {
        (p.ecosystem, p.name): p for p in InstalledPackage.objects.filter(executor=catalog_db)
    }

    hstore = packages[("PostgreSQL-extension", "hstore")]
    assert hstore.version == "1.7"
    # PostgreSQL's own order of hstore versions, from its update scripts.
    assert hstore.metadata["ordering"][-2:] == ["1.7", "1.8"]
    server = packages[("PostgreSQL", "postgresql")]
    assert server.version.split(".")[0] == str(server.metadata["num"] // 10000)


def test_hstore_is_updated_to_1_8_with_a_backup_and_verified(
    catalog_db, hstore_db, requester, operator, tenant
):
    before = _state(hstore_db)
    change = _change(
        requester,
        tenant,
        catalog_db,
        sql_checks="hstore | 3 | SELECT count(*) FROM items WHERE attrs ? 'colour'",
    )

    run = run_now(change, operator)

    assert run.status == "SUCCEEDED", run.error
    after = _state(hstore_db)
    assert after["version"] == "1.8"
    assert (after["rows"], after["oid"]) == (before["rows"], before["oid"])
    [result] = run.result["security_updates"]
    assert (result["status"], result["version_before"], result["version_after"]) == (
        "SUCCESS",
        "1.7",
        "1.8",
    )
    assert result["details"]["verification"]["checks"][0]["value"] == "3"
    backup = ComponentBackup.objects.get(run=run)
    assert backup.kind == "pg_dump"
    assert backup.metadata["tables"]["public.items"]["rows"] == 3
    assert backup.size_bytes == backup.file.size and result["backup_sha256"] == backup.sha256
    listing = subprocess.run(
        ["pg_restore", "--list", backup.file.path], check=True, capture_output=True, text=True
    ).stdout
    assert "TABLE DATA public items" in listing and "EXTENSION - hstore" in listing
    step = run.steps.get(name__startswith="Update catalog-db")
    assert """ALTER EXTENSION "hstore" UPDATE TO '1.8'""" in step.output
    assert InstalledPackage.objects.get(executor=catalog_db, name="hstore").version == "1.8"
    assert ChangeRequest.objects.get(pk=change.pk).state == "completed"


def test_a_failing_verification_step_restores_the_dump_and_the_old_version(
    catalog_db, hstore_db, requester, operator, tenant
):
    before = _state(hstore_db)
    change = _change(
        requester, tenant, catalog_db, sql_checks="hstore | 4 | SELECT count(*) FROM items"
    )

    run = run_now(change, operator)

    [result] = run.result["security_updates"]
    assert result["status"] == "ROLLED_BACK", result["error"]
    assert result["failed_step"] == "VERIFY"
    assert "gave '3', expected '4'" in result["error"]
    after = _state(hstore_db)
    assert after["version"] == "1.7"
    assert after["rows"] == before["rows"]
    assert after["index"] == before["index"]
    # The table was re-created from the dump, not merely left alone.
    assert after["oid"] != before["oid"]
    assert result["details"]["rollback"]["tables_checked"] == 1
    assert run.status == "ROLLED_BACK"
    row = UpdateResult.objects.get(run=run)
    assert (row.status, row.version_before, row.version_after) == ("ROLLED_BACK", "1.7", "1.7")
    assert InstalledPackage.objects.get(executor=catalog_db, name="hstore").version == "1.7"


def test_a_target_version_the_server_does_not_have_is_refused_and_nothing_is_written(
    catalog_db, requester, tenant
):
    change = approved_change(requester, tenant, catalog_db.component, title="hstore 9.9")
    ChangeRequest.objects.filter(pk=change.pk).update(state="draft")

    with pytest.raises(Invalid) as refused:
        change_procedure_add(
            change=ChangeRequest.objects.get(pk=change.pk),
            by=requester,
            kind="security_update",
            params={
                "updates": f"{catalog_db.component.name} | hstore | 9.9",
                "timeout_minutes": "10",
            },
        )

    assert "hstore has no version '9.9' on catalog-db; available:" in refused.value.message
    assert "1.8" in refused.value.message
    assert not ChangeProcedure.objects.filter(change=change).exists()


def test_a_backup_that_would_miss_objects_using_the_extension_stops_the_patch(
    catalog_db, hstore_db, requester, operator, tenant
):
    from maintenance.security.executors import get

    hstore_db.run("CREATE SCHEMA audit", "CREATE TABLE audit.events (id int PRIMARY KEY)")
    catalog_db.config = get("postgresql").clean_config(catalog_db.component, {"schemas": "audit"})
    catalog_db.save(update_fields=["config"])
    change = _change(requester, tenant, catalog_db)

    run = run_now(change, operator)

    [result] = run.result["security_updates"]
    assert (result["status"], result["failed_step"]) == ("FAILED", "BACKUP")
    assert "Objects in public use hstore, but the backup covers only audit" in result["error"]
    assert _state(hstore_db)["version"] == "1.7"  # no patch was tried
    assert not ComponentBackup.objects.exists()


@pytest.mark.parametrize(
    ("check", "says"),
    [
        ("hstore | 0 | DELETE FROM items", "A SQL check is one SELECT statement"),
        ("hstore | 0 | SELECT 1; DROP TABLE items", "A SQL check is one SELECT statement"),
        ("hstore | 0 | SELECT id FROM items FOR UPDATE", "only reads"),
        ("hstore | 0 | SELEC 1", "does not parse"),
    ],
)
def test_a_sql_check_that_is_not_one_read_only_select_is_refused(
    catalog_db, requester, tenant, check, says
):
    change = approved_change(requester, tenant, catalog_db.component, title="hstore 1.8")
    ChangeRequest.objects.filter(pk=change.pk).update(state="draft")

    with pytest.raises(Invalid) as refused:
        change_procedure_add(
            change=ChangeRequest.objects.get(pk=change.pk),
            by=requester,
            kind="security_update",
            params={
                "updates": f"{catalog_db.component.name} | hstore | 1.8",
                "sql_checks": check,
                "timeout_minutes": "10",
            },
        )

    assert says in refused.value.message
    assert not ChangeProcedure.objects.exists()
