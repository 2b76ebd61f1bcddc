"""The audit trail is append-only on both backends: PostgreSQL and the embedded SQLite.

The SQLite side runs as `make run` does: `manage.py migrate` in a fresh process on a real
SQLite file, then the portal's own code and a plain sqlite3 connection try to change rows.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from portal.audit import audit_record
from portal.models import AuditEvent

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("embedded_demo")

TAMPERING = [
    pytest.param("UPDATE portal_auditevent SET action = 'forged'", "UPDATE", id="update-all"),
    pytest.param(
        "UPDATE portal_auditevent SET outcome = 'DENIED'"
        " WHERE sequence = (SELECT min(sequence) FROM portal_auditevent)",
        "UPDATE",
        id="update-one",
    ),
    pytest.param("DELETE FROM portal_auditevent", "DELETE", id="delete-all"),
    pytest.param(
        "DELETE FROM portal_auditevent"
        " WHERE sequence = (SELECT max(sequence) FROM portal_auditevent)",
        "DELETE",
        id="delete-last",
    ),
]


class SqlitePortal:
    """A migrated SQLite portal database, used through manage.py in fresh processes."""

    def __init__(self, root: Path) -> None:
        self.database = root / "portal.sqlite3"
        self.env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
        self.env.update(
            {
                "DATABASE_URL": f"sqlite:///{self.database}",
                "CELERY_BROKER_URL": "filesystem://",
                "PORTAL_VAR_DIR": str(root / "var"),
                "PORTAL_ENV": "development",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stderr}"
        return result

    def shell(self, code: str) -> str:
        return self.manage("shell", "--no-imports", "-c", code).stdout

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.database, timeout=10)

    def rows(self) -> list[tuple]:
        with closing(self.connect()) as conn:
            return conn.execute(
                "SELECT sequence, action, outcome, hash FROM portal_auditevent ORDER BY sequence"
            ).fetchall()


@pytest.fixture(scope="module")
def sqlite_portal(tmp_path_factory, copy_migrated_sqlite) -> SqlitePortal:
    portal = SqlitePortal(tmp_path_factory.mktemp("sqlite-audit"))
    copy_migrated_sqlite(portal.database)  # a fresh process's `manage.py migrate`
    portal.shell(
        "from portal.audit import audit_record\n"
        "for n in range(3):\n"
        "    audit_record(action='test.guarded', object_type='thing', object_id=n)\n"
    )
    return portal


def test_sqlite_migrations_install_both_triggers(sqlite_portal):
    with closing(sqlite_portal.connect()) as conn:
        triggers = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name = 'portal_auditevent' ORDER BY name"
        ).fetchall()

    assert triggers == [("portal_audit_no_delete",), ("portal_audit_no_update",)]


@pytest.mark.parametrize(("statement", "operation"), TAMPERING)
def test_sqlite_refuses_to_change_audit_rows(sqlite_portal, statement, operation):
    before = sqlite_portal.rows()

    with closing(sqlite_portal.connect()) as conn:
        with pytest.raises(sqlite3.IntegrityError) as refused:
            with conn:
                conn.execute(statement)

    assert str(refused.value) == f"portal_auditevent is append-only: {operation} refused"
    assert sqlite_portal.rows() == before
    assert len(before) >= 3


def test_sqlite_refuses_the_orm_too_and_still_appends(sqlite_portal):
    before = sqlite_portal.rows()

    out = sqlite_portal.shell(
        "from django.db import DatabaseError, transaction\n"
        "from portal.audit import audit_record\n"
        "from portal.models import AuditEvent\n"
        "for attempt in (\n"
        "    lambda: AuditEvent.objects.update(outcome='DENIED'),\n"
        "    lambda: AuditEvent.objects.filter(sequence=1).delete(),\n"
        "    lambda: AuditEvent.objects.get(sequence=2).delete(),\n"
        "):\n"
        "    try:\n"
        "        with transaction.atomic():\n"
        "            attempt()\n"
        "        print('allowed')\n"
        "    except DatabaseError as exc:\n"
        "        print(type(exc).__name__, exc)\n"
        "audit_record(action='test.appended')\n"
    )

    assert out.splitlines() == [
        "IntegrityError portal_auditevent is append-only: UPDATE refused",
        "IntegrityError portal_auditevent is append-only: DELETE refused",
        "IntegrityError portal_auditevent is append-only: DELETE refused",
    ]
    after = sqlite_portal.rows()
    assert after[: len(before)] == before
    assert [row[1] for row in after[len(before) :]] == ["test.appended"]
    assert "Audit chain intact" in sqlite_portal.manage("verify_audit_chain").stdout


# --- PostgreSQL: the same statements, refused by its triggers -----------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("statement", "operation"), TAMPERING)
def test_postgresql_refuses_the_same_statements(statement, operation):
    for n in range(3):
        audit_record(action="test.guarded", object_type="thing", object_id=n)
    before = list(AuditEvent.objects.order_by("sequence").values_list("sequence", "hash"))

    with pytest.raises(DatabaseError, match=f"append-only: {operation} refused"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)

    assert connection.vendor == "postgresql"
    assert list(AuditEvent.objects.order_by("sequence").values_list("sequence", "hash")) == before
