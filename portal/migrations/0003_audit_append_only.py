"""On PostgreSQL the audit table refuses UPDATE, DELETE and TRUNCATE.

TRUNCATE passes only when the transaction-local setting portal.audit_truncate is
'on', which only the test suite's flush sets (portal/db/postgresql/base.py).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION portal_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'portal_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE OR REPLACE FUNCTION portal_audit_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('portal.audit_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'portal_auditevent is append-only: TRUNCATE refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER portal_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON portal_auditevent
    FOR EACH ROW EXECUTE FUNCTION portal_audit_refuse_change();

CREATE TRIGGER portal_audit_no_truncate
    BEFORE TRUNCATE ON portal_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION portal_audit_refuse_truncate();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS portal_audit_no_update_delete ON portal_auditevent;
DROP TRIGGER IF EXISTS portal_audit_no_truncate ON portal_auditevent;
DROP FUNCTION IF EXISTS portal_audit_refuse_change();
DROP FUNCTION IF EXISTS portal_audit_refuse_truncate();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("portal", "0002_role_groups")]
    operations = [migrations.RunPython(forward, backward)]
