"""On SQLite (the embedded default of `make run`) the audit table refuses UPDATE and DELETE.

SQLite has no TRUNCATE: Django's flush and a bare ``DELETE FROM`` are deletes, which the
trigger refuses like any other (SQLite then skips its truncate shortcut). The test suite
runs on PostgreSQL, whose flush passes the TRUNCATE guard (portal/db/postgresql/base.py);
nothing flushes a SQLite audit table, so it gets no escape hatch. RAISE(ABORT) rolls back
the statement and reaches Django as an IntegrityError (a DatabaseError) naming the table.
"""

from django.db import migrations

FORWARD = [
    """
    CREATE TRIGGER IF NOT EXISTS portal_audit_no_update
    BEFORE UPDATE ON portal_auditevent
    BEGIN
        SELECT RAISE(ABORT, 'portal_auditevent is append-only: UPDATE refused');
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS portal_audit_no_delete
    BEFORE DELETE ON portal_auditevent
    BEGIN
        SELECT RAISE(ABORT, 'portal_auditevent is append-only: DELETE refused');
    END
    """,
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS portal_audit_no_update",
    "DROP TRIGGER IF EXISTS portal_audit_no_delete",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in FORWARD:
            schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in BACKWARD:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("portal", "0004_outbox_done")]
    operations = [migrations.RunPython(forward, backward)]
