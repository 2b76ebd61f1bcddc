"""PostgreSQL backend whose test-suite flush may pass the audit table's TRUNCATE guard.

The audit trigger refuses TRUNCATE unless the transaction-local setting
``portal.audit_truncate`` is ``on``. Django's ``flush`` (used by transactional tests
after every test) is a TRUNCATE, so only when ``AUDIT_ALLOW_TEST_TRUNCATE`` is true,
which the test configuration alone sets, does the flush switch the setting on.
"""

from __future__ import annotations

from django.conf import settings
from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        statements = super().sql_flush(
            style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if statements and getattr(settings, "AUDIT_ALLOW_TEST_TRUNCATE", False):
            statements.insert(0, "SELECT set_config('portal.audit_truncate', 'on', true)")
        return statements


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
