"""Explain on the query page: the plan tree of a statement, EXPLAIN ANALYZE only for a
SELECT without side effects, in a rolled-back read-only transaction."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dbops.advisor import explain
from portal.models import AuditEvent
from tests.dbops.conftest import SLOW

pytestmark = pytest.mark.django_db


def _explain(client, target, statement: str, *, analyze: bool = False):
    data = {"statement": statement}
    if analyze:
        data["analyze"] = "on"
    return client.post(reverse("dbops:explain", args=[target.pk]), data)


def test_it_shows_the_plan_of_a_select_as_a_tree_with_the_costly_node_marked(
    client, operator, make_target, slow_orders
):
    target = make_target()
    client.force_login(operator)

    response = _explain(client, target, "SELECT * FROM orders WHERE customer_ref = 11")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="plan"' in page
    assert "Seq Scan" in page and "<code>orders</code>" in page
    assert 'data-costly="true"' in page
    assert "Plan (EXPLAIN)" in page
    assert not AuditEvent.objects.filter(action__startswith="dbops.explain").exists()


def test_the_explain_button_of_a_statement_plans_it_with_generic_parameters(
    client, operator, make_target, slow_orders
):
    target = make_target()
    client.force_login(operator)

    response = client.get(reverse("dbops:explain", args=[target.pk]), {"queryid": slow_orders})

    page = response.content.decode()
    assert response.status_code == 200
    assert SLOW in page  # the statement, prefilled
    assert "generic plan for $n parameters" in page
    assert "Filter: <code>(customer_ref = $1)</code>" in page


def test_explain_analyze_runs_a_select_and_shows_actual_times(
    client, operator, make_target, slow_orders
):
    target = make_target()
    client.force_login(operator)

    response = _explain(
        client, target, "SELECT count(*) FROM orders WHERE customer_ref = 11", analyze=True
    )

    page = response.content.decode()
    assert response.status_code == 200, page
    assert "Plan as run (EXPLAIN ANALYZE)" in page
    assert "actual " in page and "execution " in page
    event = AuditEvent.objects.get(action="dbops.explain.analyzed")
    assert event.details["analyze"] is True
    assert "customer_ref" not in str(event.details)  # the fingerprint, not the text


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("UPDATE orders SET note = 'x' WHERE id = 1", "offered for SELECT only"),
        ("DELETE FROM orders WHERE id = 1", "offered for SELECT only"),
        ("WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d", "modifies"),
        ("SELECT * FROM orders WHERE id = 1 FOR UPDATE", "row locks"),
        ("SELECT * INTO copy_of_orders FROM orders", "creates a table"),
        ("SELECT pg_terminate_backend(pg_backend_pid())", "volatile"),
        ("SELECT nextval('orders_seq')", "volatile"),
        ("SELECT * FROM orders WHERE customer_ref = $1", "values"),
        ("SELECT 1; DROP TABLE orders", "one statement"),
    ],
)
def test_explain_analyze_is_refused_for_statements_with_side_effects(
    client, operator, make_target, statements_db, slow_orders, statement, reason
):
    target = make_target()
    client.force_login(operator)

    response = _explain(client, target, statement, analyze=True)

    page = response.content.decode()
    assert response.status_code == 400
    assert reason in page
    assert 'data-testid="plan"' not in page
    event = AuditEvent.objects.get(action="dbops.explain.refused")
    assert event.outcome == AuditEvent.Outcome.DENIED
    with statements_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 300_000
        assert conn.execute("SELECT to_regclass('copy_of_orders')").fetchone()[0] is None


def test_plain_explain_of_a_write_only_plans_it(
    client, operator, make_target, statements_db, slow_orders
):
    target = make_target()
    client.force_login(operator)

    response = _explain(client, target, "DELETE FROM orders WHERE customer_ref = 11")

    assert response.status_code == 200
    assert "Delete" in response.content.decode()
    with statements_db.connect() as conn:
        assert (
            conn.execute("SELECT count(*) FROM orders WHERE customer_ref = 11").fetchone()[0] == 6
        )


def test_explain_analyze_stops_at_the_statement_timeout(
    make_target, slow_orders, monkeypatch, operator
):
    monkeypatch.setattr(explain, "ANALYZE_TIMEOUT_MS", 50)
    target = make_target()

    with pytest.raises(explain.ExplainRefused, match="statement timeout"):
        explain.statement_explain(
            target=target,
            by=operator,
            query="SELECT count(*) FROM generate_series(1, 500000000)",
            analyze=True,
        )


@pytest.mark.parametrize("statement", ["", "SELECT *123'", "VACUUM orders", "x" * 100_001])
def test_bad_statements_get_a_clear_message(client, operator, make_target, slow_orders, statement):
    target = make_target()
    client.force_login(operator)

    response = _explain(client, target, statement)

    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()


def test_an_unknown_or_malformed_queryid_is_refused(client, operator, make_target, slow_orders):
    target = make_target()
    client.force_login(operator)
    url = reverse("dbops:explain", args=[target.pk])

    assert client.get(url, {"queryid": "12345"}).status_code == 404
    assert client.get(url, {"queryid": "abc"}).status_code == 400


def test_the_plan_tree_marks_the_node_taking_most_of_the_cost():
    document = {
        "Plan": {
            "Node Type": "Hash Join",
            "Startup Cost": 10.0,
            "Total Cost": 100.0,
            "Plan Rows": 5,
            "Plans": [
                {"Node Type": "Seq Scan", "Relation Name": "a", "Total Cost": 80.0},
                {"Node Type": "Index Scan", "Index Name": "b_pkey", "Total Cost": 5.0},
            ],
        }
    }

    result = explain.plan_tree(document)

    scan, probe = result.root.children
    assert scan.costly and not probe.costly
    assert result.root.self_cost == pytest.approx(15.0)
    assert scan.share == pytest.approx(0.8)
