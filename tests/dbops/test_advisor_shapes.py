"""The shapes the advisor understands beyond PgHero, each with the index it suggests on
a real table and pg_stats, and HypoPG's verdict on it. Plus coverage by access method,
the small-table threshold, the cost-cut share and the "unverified" mark."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dbops.advisor import advise, catalog, hypo, rules
from dbops.advisor.model import Proof, Statement
from tests.dbops.advisor_db import advisor_database

SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE TABLE patients (id bigint PRIMARY KEY, mrn text NOT NULL, name text NOT NULL)",
    "CREATE TABLE claims (id bigint PRIMARY KEY, payer_id int NOT NULL, patient_id bigint,"
    " status text NOT NULL, submitted_at timestamptz NOT NULL, adjudicated_at timestamptz,"
    " is_flagged boolean NOT NULL, email text NOT NULL, member_code text NOT NULL,"
    ' code_c text COLLATE "C" NOT NULL, notes text NOT NULL, payload jsonb)',
    "INSERT INTO patients SELECT i, 'MRN' || i, 'Patient ' || (i % 4000)"
    " FROM generate_series(1, 20000) AS i",
    "INSERT INTO claims SELECT i, abs(hashint4(i)) % 500, 1 + abs(hashint4(i + 7)) % 20000,"
    " (ARRAY['new','open','paid','void','held'])[1 + i % 5],"
    " timestamptz '2026-01-01' + i * interval '1 minute',"
    " CASE WHEN i % 50 = 0 THEN NULL ELSE timestamptz '2026-01-02' END, i % 100 = 0,"
    " 'Person' || i || '@Example.org', 'M' || lpad((i % 9000)::text, 5, '0'),"
    " 'C' || lpad((i % 9000)::text, 5, '0'),"
    " CASE WHEN i % 97 = 0 THEN 'claim denied by payer' ELSE 'routine claim ' || i END,"
    " jsonb_build_object('k', i % 3)"
    " FROM generate_series(1, 100000) AS i",
    "CREATE INDEX claims_payload_gin ON claims USING gin (payload)",
    "CREATE INDEX claims_status_hash ON claims USING hash (status)",
    "CREATE INDEX claims_submitted_brin ON claims USING brin (submitted_at)",
    "ANALYZE patients",
    "ANALYZE claims",
]

# (shape, statement, the advisor's suggestion(s), HypoPG's verdict on each)
SHAPES = [
    ("equality", "SELECT * FROM claims WHERE payer_id = $1", "claims(payer_id)", "proven"),
    ("IN", "SELECT * FROM claims WHERE payer_id IN ($1, $2, $3)", "claims(payer_id)", "proven"),
    ("= ANY", "SELECT * FROM claims WHERE payer_id = ANY($1)", "claims(payer_id)", "proven"),
    (
        "equalities ordered by selectivity, not by the WHERE",
        "SELECT * FROM claims WHERE status = $1 AND payer_id = $2",
        "claims(payer_id, status)",
        "proven",
    ),
    (
        "range as the last column",
        "SELECT * FROM claims WHERE submitted_at > $1 AND payer_id = $2",
        "claims(payer_id, submitted_at)",
        "proven",
    ),
    (
        "BETWEEN as the last column",
        "SELECT * FROM claims WHERE payer_id = $1 AND submitted_at BETWEEN $2 AND $3",
        "claims(payer_id, submitted_at)",
        "proven",
    ),
    (
        "ORDER BY appended after the equality",
        "SELECT * FROM claims WHERE payer_id = $1 ORDER BY submitted_at DESC LIMIT 20",
        "claims(payer_id, submitted_at)",
        "proven",
    ),
    (
        "ORDER BY with a LIMIT and no WHERE (BRIN cannot sort)",
        "SELECT * FROM claims ORDER BY submitted_at DESC LIMIT 50",
        "claims(submitted_at)",
        "proven",
    ),
    (
        "partial index for IS NULL",
        "SELECT * FROM claims WHERE adjudicated_at IS NULL AND payer_id = $1",
        "claims(payer_id) WHERE adjudicated_at IS NULL",
        "proven",
    ),
    (
        "partial index alone",
        "SELECT id FROM claims WHERE adjudicated_at IS NULL",
        "claims(adjudicated_at) WHERE adjudicated_at IS NULL",
        "proven",
    ),
    (
        "partial index for a boolean flag",
        "SELECT * FROM claims WHERE is_flagged AND status = $1",
        "claims(status) WHERE is_flagged",
        "proven",
    ),
    (
        "LIKE 'prefix%' under a non-C collation",
        "SELECT * FROM claims WHERE member_code LIKE 'M0001%'",
        "claims(member_code text_pattern_ops)",
        "proven",
    ),
    (
        "LIKE 'prefix%' under the C collation",
        "SELECT * FROM claims WHERE code_c LIKE 'C0001%'",
        "claims(code_c)",
        "proven",
    ),
    (
        "LIKE '%infix%' (trigram)",
        "SELECT * FROM claims WHERE notes LIKE '%denied%'",
        "claims USING gin(notes gin_trgm_ops)",
        "unverified",
    ),
    (
        "ILIKE (trigram)",
        "SELECT * FROM claims WHERE notes ILIKE $1",
        "claims USING gin(notes gin_trgm_ops)",
        "unverified",
    ),
    (
        "expression",
        "SELECT * FROM claims WHERE lower(email) = lower($1)",
        "claims(lower(email))",
        "proven",
    ),
    (
        "OR of indexable branches",
        "SELECT * FROM claims WHERE payer_id = $1 OR patient_id = $2",
        "claims(payer_id); claims(patient_id)",
        "proven",
    ),
    (
        "OR of equalities on one column is IN",
        "SELECT * FROM claims WHERE payer_id = $1 OR payer_id = $2",
        "claims(payer_id)",
        "proven",
    ),
    (
        "join: the filtered side, and the probed side's join column",
        "SELECT c.* FROM patients p JOIN claims c ON c.patient_id = p.id WHERE p.mrn = $1",
        "patients(mrn); claims(patient_id)",
        "proven",
    ),
    (
        "UPDATE",
        "UPDATE claims SET status = $1 WHERE payer_id = $2 AND adjudicated_at IS NULL",
        "claims(payer_id) WHERE adjudicated_at IS NULL",
        "proven",
    ),
    (
        "jsonb equality: the GIN index does not serve =",
        "SELECT * FROM claims WHERE payload = $1 AND payer_id = $2",
        "claims(payer_id)",
        "proven",
    ),
]


def answer(verdict) -> str:
    if not verdict.found:
        return f"none: {verdict.reason}"
    return "; ".join(
        f"covered by {verdict.covered_by[c.identity]}"
        if c.identity in verdict.covered_by
        else c.label
        for c in verdict.candidates
    )


@pytest.fixture(scope="module")
def claims(pg_server):
    with advisor_database(pg_server, SCHEMA) as name, pg_server.connect(name) as conn:
        tables = catalog.read_catalog(
            conn, [q for _, q, _, _ in SHAPES] + ["SELECT * FROM patients"]
        )
        yield conn, tables


def test_at_least_fifteen_shapes_are_covered():
    assert len(SHAPES) >= 15


@pytest.mark.parametrize(
    ("shape", "query", "expected", "proof"), SHAPES, ids=[s[0] for s in SHAPES]
)
def test_it_suggests_the_index_for_each_shape(claims, shape, query, expected, proof):
    conn, tables = claims

    verdict = rules.analyse(query, tables, rules.Settings(trigram=True))

    assert answer(verdict) == expected
    ext = hypo.extensions(conn)
    groups = advise._groups(verdict)
    assert groups
    for group in groups:
        found = hypo.prove(conn, ext, query, list(group))
        assert found.status == proof, found.reason
        if proof == "proven":
            assert found.cost_after <= 0.7 * found.cost_before


def test_without_pg_trgm_an_infix_pattern_is_said_plainly(claims):
    _, tables = claims

    verdict = rules.analyse(
        "SELECT * FROM claims WHERE notes LIKE '%denied%'", tables, rules.Settings(trigram=False)
    )

    assert not verdict.found
    assert "pg_trgm is not available" in verdict.reason


def test_the_small_table_threshold_is_configurable(claims):
    _, tables = claims
    query = "SELECT * FROM patients WHERE name = $1"

    assert answer(rules.analyse(query, tables)) == "patients(name)"
    assert answer(rules.analyse(query, tables, rules.Settings(min_rows=50_000))).startswith(
        "none: Small table (20,000 rows, under 50,000)"
    )


@pytest.mark.parametrize(
    ("query", "covered_by"),
    [
        # hash: equality and IN only
        ("SELECT * FROM claims WHERE status = $1", "claims_status_hash"),
        # BRIN: a range, but no ORDER BY
        ("SELECT * FROM claims WHERE submitted_at > $1", "claims_submitted_brin"),
        # the primary key's btree serves equality and ORDER BY
        ("SELECT * FROM claims WHERE id = $1", "claims_pkey"),
        ("SELECT * FROM claims ORDER BY id LIMIT 10", "claims_pkey"),
    ],
)
def test_an_index_covers_only_what_its_access_method_serves(claims, query, covered_by):
    _, tables = claims

    assert answer(rules.analyse(query, tables)) == f"covered by {covered_by}"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # hash cannot sort; GIN jsonb_ops has no =; BRIN cannot sort
        (
            "SELECT * FROM claims WHERE status = $1 ORDER BY submitted_at",
            "claims(status, submitted_at)",
        ),
        ("SELECT * FROM claims WHERE payload = $1 AND payer_id = $2", "claims(payer_id)"),
        ("SELECT * FROM claims ORDER BY submitted_at LIMIT 5", "claims(submitted_at)"),
        # hash serves no IS NULL
        ("SELECT * FROM claims WHERE status IS NULL", "claims(status) WHERE status IS NULL"),
    ],
)
def test_an_index_of_the_wrong_access_method_does_not_cover(claims, query, expected):
    _, tables = claims

    assert answer(rules.analyse(query, tables)).startswith(expected)


def test_btree_leading_columns_cover_equalities_in_any_order(claims):
    conn, _ = claims
    conn.execute("CREATE INDEX claims_status_payer ON claims (status, payer_id)")
    try:
        tables = catalog.read_catalog(conn, ["SELECT * FROM claims"])
        verdict = rules.analyse("SELECT * FROM claims WHERE payer_id = $1 AND status = $2", tables)
        ranged = rules.analyse(
            "SELECT * FROM claims WHERE payer_id = $1 AND submitted_at > $2", tables
        )
    finally:
        conn.execute("DROP INDEX claims_status_payer")

    assert answer(verdict) == "covered by claims_status_payer"
    assert answer(ranged) == "claims(payer_id, submitted_at)"


def _statements(*queries: str) -> list[Statement]:
    return [
        Statement(
            queryid=i,
            query=q,
            calls=10,
            total_exec_time=100.0 * (10 - i),
            mean_exec_time=10.0,
            rows=10,
        )
        for i, q in enumerate(queries, start=1)
    ]


def test_a_candidate_the_planner_would_not_use_is_not_proposed(claims):
    conn, _ = claims
    statements = _statements(
        "SELECT * FROM claims WHERE payer_id = $1",
        "SELECT * FROM claims WHERE member_code > $1",
    )

    found = advise.advise_on(conn, statements)

    assert [s.label for s in found.suggestions] == ["claims(payer_id)"]
    assert found.suggestions[0].proof.status == Proof.PROVEN
    assert found.suggestions[0].proof.cut_percent >= 30
    [rejected] = found.rejected
    assert rejected.label == "claims(member_code)"
    assert "would not use it" in rejected.proof.reason or "only" in rejected.proof.reason


def test_the_required_cost_cut_is_configurable(claims):
    conn, _ = claims
    statements = _statements("SELECT * FROM claims WHERE payer_id IN ($1, $2, $3)")

    usual = advise.advise_on(conn, statements)
    demanding = advise.advise_on(
        conn, statements, settings=replace(rules.Settings(), min_cost_cut=0.999)
    )

    assert [s.label for s in usual.suggestions] == ["claims(payer_id)"]
    assert demanding.suggestions == []
    assert "at least 100 % is required" in demanding.rejected[0].proof.reason


def test_without_hypopg_suggestions_are_marked_unverified(pg_server):
    with (
        advisor_database(
            pg_server,
            [
                SCHEMA[1],
                "INSERT INTO patients SELECT i, 'MRN' || i, 'P' FROM generate_series(1, 5000) AS i",
                "ANALYZE patients",
            ],
            hypopg=False,
        ) as name,
        pg_server.connect(name) as conn,
    ):
        found = advise.advise_on(conn, _statements("SELECT * FROM patients WHERE mrn = $1"))

    [suggestion] = found.suggestions
    assert suggestion.label == "patients(mrn)"
    assert suggestion.proof.status == Proof.UNVERIFIED
    assert "HypoPG is installed but not created here" in suggestion.proof.reason
