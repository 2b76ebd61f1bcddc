"""After the index is built: the verification checks the plan uses it and fails, offering
DROP INDEX CONCURRENTLY, when the statement got slower or the plan ignores the index."""

from __future__ import annotations

import pytest

from dbops.advisor.verify import index_verification
from tests.dbops.advisor_db import advisor_database

SCHEMA = [
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer_ref int NOT NULL, status text)",
    "INSERT INTO orders SELECT i, i % 5000, (ARRAY['open','paid'])[1 + i % 2]"
    " FROM generate_series(1, 100000) AS i",
    "CREATE INDEX orders_customer_ref_idx ON orders (customer_ref)",
    "CREATE INDEX orders_status_idx ON orders (status)",
    "ANALYZE orders",
]
QUERY = "SELECT * FROM orders WHERE customer_ref = $1"


@pytest.fixture(scope="module")
def orders(pg_server):
    with advisor_database(pg_server, SCHEMA, hypopg=False) as name, pg_server.connect(name) as c:
        yield c


def test_it_passes_when_the_plan_uses_the_index_and_the_statement_got_faster(orders):
    result = index_verification(
        orders,
        query=QUERY,
        schema="public",
        index_name="orders_customer_ref_idx",
        mean_before_ms=40.0,
        mean_after_ms=0.2,
    )

    assert result.ok and result.uses_index and result.slower is False
    assert "The plan uses orders_customer_ref_idx." in result.message


def test_it_fails_and_offers_the_backout_when_the_statement_got_slower(orders):
    result = index_verification(
        orders,
        query=QUERY,
        schema="public",
        index_name="orders_customer_ref_idx",
        mean_before_ms=0.2,
        mean_after_ms=0.9,
    )

    assert not result.ok
    assert result.uses_index and result.slower is True
    assert "got slower: 0.20 ms before, 0.90 ms after" in result.message
    assert (
        result.backout_sql == 'DROP INDEX CONCURRENTLY IF EXISTS "public"."orders_customer_ref_idx"'
    )
    assert result.backout_sql in result.message


def test_it_fails_when_the_plan_does_not_use_the_index(orders):
    # The planner prefers the index it already had: the new one is dead weight.
    result = index_verification(
        orders,
        query="SELECT * FROM orders WHERE customer_ref = $1 AND status = $2",
        schema="public",
        index_name="orders_status_idx",
        mean_before_ms=30.0,
        mean_after_ms=29.0,
    )

    assert not result.ok
    assert result.uses_index is False
    assert "does not use orders_status_idx (it reads orders_customer_ref_idx)" in result.message


def test_before_any_new_call_only_the_plan_is_judged(orders):
    result = index_verification(
        orders,
        query=QUERY,
        schema="public",
        index_name="orders_customer_ref_idx",
        mean_before_ms=40.0,
        mean_after_ms=None,
    )

    assert result.ok and result.slower is None
