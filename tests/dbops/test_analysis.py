"""The analysis rules on their own: pglast parsing, selectivity, covering indexes."""

from __future__ import annotations

import pytest

from dbops import analysis
from dbops.analysis import Statement, TableCatalog, TableRef, TableScans


def st(query: str, *, queryid: int = 1, calls: int = 10, mean: float = 250.0) -> Statement:
    return Statement(
        queryid=queryid,
        query=query,
        calls=calls,
        total_exec_time=mean * calls,
        mean_exec_time=mean,
        rows=calls,
    )


def orders(**overrides) -> TableCatalog:
    values = {
        "schema": "public",
        "name": "orders",
        "reltuples": 300_000.0,
        "columns": {"id": -1.0, "customer_ref": 50_000.0, "status": 3.0, "region": 12.0},
        "indexes": [("id",)],
        "search_path_position": 1,
    }
    values.update(overrides)
    return TableCatalog(**values)


# --- parsing with pglast ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "columns"),
    [
        ("SELECT * FROM orders WHERE customer_ref = $1", ("customer_ref",)),
        ("SELECT * FROM orders WHERE $1 = customer_ref", ("customer_ref",)),
        ("SELECT id FROM orders WHERE status IN ($1, $2, $3)", ("status",)),
        ("SELECT id FROM orders WHERE status = ANY($1)", ("status",)),
        ("SELECT id FROM orders WHERE customer_ref = $1::int", ("customer_ref",)),
        ("SELECT * FROM orders o WHERE o.customer_ref = $1 AND o.status = 'open'", None),
        ("UPDATE orders SET status = $1 WHERE customer_ref = $2", ("customer_ref",)),
        ("DELETE FROM public.orders WHERE public.orders.region IN (1, 2)", ("region",)),
        (
            "select * from ORDERS where REGION = $1 and created_at > $2 and status = $3",
            ("region", "status"),
        ),
    ],
)
def test_it_finds_equality_and_in_columns(query, columns):
    found = analysis.equality_predicates(query)

    expected = columns or ("customer_ref", "status")
    assert found is not None
    assert found.table.name == "orders"
    assert found.columns == expected


def test_it_keeps_the_schema_and_quoted_names():
    found = analysis.equality_predicates('SELECT 1 FROM "Sales"."Big Orders" WHERE "Ref" = $1')

    assert found.table == TableRef(schema="Sales", name="Big Orders")
    assert found.columns == ("Ref",)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = $1",
        "SELECT * FROM orders, customers WHERE orders.status = $1",
        "SELECT * FROM (SELECT * FROM orders) AS o WHERE o.status = $1",
        "WITH o AS (SELECT * FROM orders) SELECT * FROM o WHERE status = $1",
        "SELECT id FROM orders WHERE status = $1 UNION SELECT id FROM archive WHERE status = $2",
        "UPDATE orders SET status = $1 FROM customers WHERE orders.customer_id = customers.id",
        "SELECT * FROM orders WHERE status = $1 OR region = $2",
        "SELECT * FROM orders WHERE created_at > $1",
        "SELECT * FROM orders WHERE lower(status) = $1",
        "SELECT * FROM orders WHERE status = region",
        "SELECT * FROM orders WHERE status IN (SELECT status FROM closed)",
        "SELECT * FROM orders WHERE other.status = $1",
        "SELECT now()",
        "SELECT * FROM orders WHERE (",
        "<insufficient privilege>",
    ],
)
def test_it_ignores_joins_non_equality_and_unparsable_statements(query):
    assert analysis.equality_predicates(query) is None


def test_it_groups_statements_differing_only_in_constants_and_in_lists():
    groups = analysis.group_statements(
        [
            st("SELECT * FROM orders WHERE status IN ($1, $2)", queryid=1, calls=5, mean=10),
            st("select *  from orders where status in ($1, $2, $3)", queryid=2, calls=5, mean=30),
            st("SELECT * FROM customers WHERE id = $1", queryid=3, calls=1, mean=1),
            st("not sql at all", queryid=4, calls=1, mean=1),
        ]
    )

    assert [g.variants for g in groups] == [2, 1, 1]
    assert groups[0].queryids == [1, 2]
    assert groups[0].calls == 10
    assert groups[0].mean_exec_time == pytest.approx(20.0)


# --- sequential scans ---------------------------------------------------------------------


def test_it_flags_big_tables_read_mostly_by_sequential_scans():
    tables = [
        TableScans("public", "orders", seq_scan=90, idx_scan=10, n_live_tup=300_000),
        TableScans("public", "indexed", seq_scan=4, idx_scan=96, n_live_tup=300_000),
        TableScans("public", "small", seq_scan=100, idx_scan=0, n_live_tup=9_999),
        TableScans("public", "never_indexed", seq_scan=5, idx_scan=None, n_live_tup=10_000),
        TableScans("public", "unread", seq_scan=0, idx_scan=0, n_live_tup=50_000),
    ]

    flagged = analysis.seq_scan_tables(tables)

    assert {t.name for t in flagged} == {"orders", "never_indexed"}


def test_the_index_share_boundary_is_95_percent():
    at = TableScans("public", "t", seq_scan=5, idx_scan=95, n_live_tup=10_000)
    under = TableScans("public", "u", seq_scan=6, idx_scan=94, n_live_tup=10_000)

    assert analysis.seq_scan_tables([at, under]) == [under]


# --- selectivity and covering indexes -----------------------------------------------------


def test_distinct_values_reads_negative_n_distinct_as_a_fraction_of_rows():
    assert analysis.distinct_values(-0.5, 1000) == 500
    assert analysis.distinct_values(12, 1000) == 12
    assert analysis.distinct_values(None, 1000) is None
    assert analysis.distinct_values(-1, -1) is None


def test_columns_are_ordered_most_selective_first():
    table = orders(reltuples=1_000_000.0, columns={"status": 3.0, "region": 12.0, "x": None})

    assert analysis.order_by_selectivity(["status", "x", "region"], table) == (
        "region",
        "status",
        "x",
    )


def test_it_stops_adding_columns_once_few_rows_match():
    # customer_ref alone leaves about 6 rows: status would only make the index bigger.
    assert analysis.order_by_selectivity(["status", "customer_ref"], orders()) == ("customer_ref",)


def test_without_statistics_the_statement_order_is_kept():
    table = orders(columns={"b": None, "a": None})

    assert analysis.order_by_selectivity(["b", "a"], table) == ("b", "a")


@pytest.mark.parametrize(
    ("columns", "indexes", "covered"),
    [
        (("a",), [("a",)], True),
        (("a",), [("a", "b")], True),
        (("a", "b"), [("b", "a", "c")], True),
        (("a", "b"), [("a",)], False),
        (("a",), [("b", "a")], False),
        (("a",), [(None, "a")], False),
        (("a",), [], False),
    ],
)
def test_an_index_covers_when_its_leading_columns_match(columns, indexes, covered):
    assert analysis.is_covered(columns, indexes) is covered


# --- suggestions --------------------------------------------------------------------------


def test_it_suggests_an_index_on_the_filtered_column():
    [suggestion] = analysis.suggest_indexes(
        [st("SELECT * FROM orders WHERE customer_ref = $1", queryid=7)], [orders()]
    )

    assert (suggestion.schema, suggestion.table, suggestion.columns) == (
        "public",
        "orders",
        ("customer_ref",),
    )
    assert suggestion.queryid == 7
    assert suggestion.label == "orders(customer_ref)"


def test_it_skips_a_suggestion_an_existing_index_covers():
    catalog = [orders(indexes=[("id",), ("customer_ref", "status")])]

    assert (
        analysis.suggest_indexes([st("SELECT * FROM orders WHERE customer_ref = $1")], catalog)
        == []
    )


def test_it_skips_joins_small_tables_and_unknown_columns():
    statements = [
        st("SELECT * FROM orders o JOIN c ON c.id = o.id WHERE o.status = $1", queryid=1),
        st("SELECT * FROM tiny WHERE code = $1", queryid=2),
        st("SELECT * FROM orders WHERE no_such_column = $1", queryid=3),
    ]
    tiny = orders(name="tiny", reltuples=500.0, columns={"code": 100.0})

    assert analysis.suggest_indexes(statements, [orders(), tiny]) == []


def test_a_never_analysed_table_is_not_taken_for_a_small_one():
    never_analysed = orders(reltuples=-1.0, columns={"customer_ref": None})

    [suggestion] = analysis.suggest_indexes(
        [st("SELECT * FROM orders WHERE customer_ref = $1")], [never_analysed]
    )

    assert suggestion.columns == ("customer_ref",)


def test_statements_sharing_a_suggestion_are_merged_behind_the_costliest():
    statements = [
        st("SELECT * FROM orders WHERE customer_ref = $1", queryid=1, calls=10, mean=100),
        st("DELETE FROM orders WHERE customer_ref = $1", queryid=2, calls=100, mean=100),
    ]

    [suggestion] = analysis.suggest_indexes(statements, [orders()])

    assert suggestion.queryid == 2
    assert suggestion.queryids == (1, 2)


def test_an_unqualified_table_resolves_along_the_search_path():
    archive = orders(schema="archive", search_path_position=None)
    current = orders(schema="app", search_path_position=2)
    other = orders(schema="zeta", search_path_position=3)

    ref = TableRef(schema=None, name="orders")

    assert analysis.resolve_table(ref, [archive, other, current]) is current
    assert analysis.resolve_table(ref, [archive]) is archive
    assert (
        analysis.resolve_table(ref, [archive, orders(schema="b", search_path_position=None)])
        is None
    )
    assert analysis.resolve_table(TableRef("archive", "orders"), [current, archive]) is archive


# --- the statements that apply one ---------------------------------------------------------


def test_index_statements_quote_every_identifier():
    create = analysis.create_index_sql("Sales", 'Big "Orders"', ["Ref", "a b"], "ix")
    drop = analysis.drop_index_sql("Sales", "ix")

    assert create.as_string() == (
        'CREATE INDEX CONCURRENTLY "ix" ON "Sales"."Big ""Orders""" ("Ref", "a b")'
    )
    assert drop.as_string() == 'DROP INDEX CONCURRENTLY IF EXISTS "Sales"."ix"'


def test_index_names_fit_postgres_identifier_limit():
    short = analysis.index_name("orders", ["customer_ref"])
    long = analysis.index_name("t" * 60, ["c" * 30, "d" * 30])

    assert short == "orders_customer_ref_idx"
    assert len(long.encode()) <= 63
    assert long.endswith("_idx")
    assert long != analysis.index_name("t" * 60, ["c" * 30, "e" * 30])


def test_it_does_not_suggest_an_index_too_unselective_to_be_used():
    # status has 3 values: a third of the table matches, a sequential scan wins.
    assert (
        analysis.suggest_indexes([st("SELECT * FROM orders WHERE status = $1")], [orders()]) == []
    )


def test_the_suggestion_says_how_many_rows_match():
    [suggestion] = analysis.suggest_indexes(
        [st("SELECT * FROM orders WHERE customer_ref = $1")], [orders()]
    )

    assert "About 6 of 300,000 rows match a value." in suggestion.why
