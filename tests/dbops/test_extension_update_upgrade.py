"""UPGRADE takes the extension executor's pg_dump backup before ALTER EXTENSION … UPDATE
and, when the update fails, restores it and verifies the old version and the data."""

from __future__ import annotations

import pytest

from maintenance.security.models import ComponentBackup
from tests.dbops.test_extension_update import ROWS, _state, hstore_db  # noqa: F401  (fixture)
from tests.factories import ComponentFactory
from tests.maintenance.execution_helpers import approved_change, calm_calendar, with_procedure
from tests.maintenance.security_support import run_now

pytestmark = pytest.mark.django_db(transaction=True)


def _upgrade(requester, operator, tenant, target, version: str):
    calm_calendar()
    change = approved_change(requester, tenant, ComponentFactory(name="catalog"), title="hstore")
    # Database procedures are added by a database operator.
    return with_procedure(
        change, operator, "db_upgrade", target=str(target.pk), extension="hstore", version=version
    )


def test_upgrade_backs_the_database_up_before_updating(
    hstore_db,  # noqa: F811
    make_target,
    requester,
    operator,
    tenant,
):
    target = make_target(name="catalog-db")
    change = _upgrade(requester, operator, tenant, target, "1.8")

    run = run_now(change, operator)

    assert run.status == "SUCCEEDED", run.error
    names = list(run.steps.order_by("position").values_list("name", flat=True))
    assert names.index("Back up the database (pg_dump)") < names.index("Update hstore")
    backup = ComponentBackup.objects.get(run=run)
    assert (backup.kind, backup.metadata["extension_version"]) == ("pg_dump", "1.7")
    assert run.result["backup"]["sha256"] == backup.sha256
    assert _state(hstore_db)["version"] == "1.8"


def test_a_failed_upgrade_restores_the_dump_and_the_old_version(
    hstore_db,  # noqa: F811
    make_target,
    requester,
    operator,
    tenant,
):
    # The update itself fails: an event trigger refuses ALTER EXTENSION.
    hstore_db.run(
        "CREATE FUNCTION refuse() RETURNS event_trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'extension updates are frozen'; END $$",
        "CREATE EVENT TRIGGER no_extension_updates ON ddl_command_end"
        " WHEN TAG IN ('ALTER EXTENSION') EXECUTE FUNCTION refuse()",
    )
    before = _state(hstore_db)
    target = make_target(name="catalog-db")
    change = _upgrade(requester, operator, tenant, target, "1.8")

    run = run_now(change, operator)

    assert run.status == "ROLLED_BACK", run.error
    assert "extension updates are frozen" in run.error
    after = _state(hstore_db)
    assert (after["version"], after["rows"]) == ("1.7", before["rows"])
    assert after["oid"] != before["oid"]  # restored from the dump
    restore = run.steps.get(kind="ROLLBACK")
    assert restore.status == "SUCCEEDED" and "table(s) as backed up" in restore.output
    assert len(ROWS) == len(after["rows"])
