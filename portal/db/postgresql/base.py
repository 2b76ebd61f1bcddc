"""Django's PostgreSQL backend with two changes.

- The test suite's flush may pass the audit table's TRUNCATE guard. The audit trigger
  refuses TRUNCATE unless the transaction-local setting ``portal.audit_truncate`` is
  ``on``. Django's ``flush`` (used by transactional tests after every test) is a
  TRUNCATE, so only when ``AUDIT_ALLOW_TEST_TRUNCATE`` is true, which the test
  configuration alone sets, does the flush switch the setting on.
- Timestamps are parsed by psycopg's C loader (see ``_TimestamptzLoader``).
"""

from __future__ import annotations

from functools import lru_cache

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base, operations
from psycopg.adapt import AdaptersMap, Loader
from psycopg.pq import Format

TIMESTAMPTZ_OID = psycopg.postgres.types["timestamptz"].oid
# psycopg's own timestamptz loader: its C implementation when psycopg has one.
_PSYCOPG_LOADER = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


class _TimestamptzLoader(Loader):
    """Django's timestamptz loader (``psycopg_any.BaseTzLoader``: the value as the
    connection's zone gives it, its tzinfo replaced by Django's) parsing with psycopg's
    C loader. Django's subclasses the pure-Python one, about 10 µs a value, and a C
    loader cannot be subclassed: this one holds one. The feed reads 9,000 timestamps."""

    timezone = None

    def __init__(self, oid: int, context=None) -> None:
        super().__init__(oid, context)
        self._parse = _PSYCOPG_LOADER(oid, context).load

    def load(self, data):
        value = self._parse(data)
        # In Django's zone already, as it nearly always is (the connection's is UTC).
        return value if value.tzinfo is self.timezone else value.replace(tzinfo=self.timezone)


@lru_cache
def _with_fast_timestamps(template: AdaptersMap) -> AdaptersMap:
    """Django's adapters (one map per time zone, itself cached) with the loader above
    in the same zone. ``create_cursor`` compares that zone with the connection's."""
    zone = template.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone
    adapters = AdaptersMap(template)
    adapters.register_loader(
        TIMESTAMPTZ_OID, type("TimestamptzLoader", (_TimestamptzLoader,), {"timezone": zone})
    )
    return adapters


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

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        if params.get("context") is not None:
            params["context"] = _with_fast_timestamps(params["context"])
        return params
