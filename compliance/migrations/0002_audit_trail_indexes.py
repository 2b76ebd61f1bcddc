"""Indexes for the audit trail's filters (user, date range) on portal's audit table.

Plain SQL both PostgreSQL and SQLite understand; the audit model itself stays portal's.
"""

from django.db import migrations

INDEXES = [
    ("compliance_audit_user_seq", "portal_auditevent (username, sequence)"),
    ("compliance_audit_created", "portal_auditevent (created_at)"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0001_initial"),
        ("portal", "0005_audit_append_only_sqlite"),
    ]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON {target}",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, target in INDEXES
    ]
