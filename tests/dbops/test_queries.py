"""Query performance on a real pg_stat_statements: the slow statement, the index it
needs, and the change request proposing it."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from changes.models import ChangeRequest, ChangeType, State
from dbops.models import IndexSuggestion, QueryStatsSnapshot
from dbops.stats import StatementsStatus
from portal.models import AuditEvent
from tests.dbops.conftest import SLOW

pytestmark = pytest.mark.django_db


def _propose_form(page: str) -> dict:
    form = re.search(r'<form method="post" action="([^"]+/propose/)">(.*?)</form>', page, re.S)
    assert form, "no Propose button"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2))
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return {"url": form.group(1), "data": data}


def test_the_slow_statement_is_listed_with_an_index_suggestion(
    client, operator, make_target, slow_orders
):
    target = make_target()
    client.force_login(operator)

    response = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": "1"})

    page = response.content.decode()
    assert response.status_code == 200
    top = page.split('data-testid="top-statements"')[1].split("</section>")[0]
    assert f'data-queryid="{slow_orders}"' in top
    assert SLOW in top
    suggestions = page.split('data-testid="suggestions"')[1].split("</section>")[0]
    assert "<code>orders(customer_ref)</code>" in suggestions
    assert "status" not in suggestions.split("<code>")[1].split("</code>")[0]
    seq_scans = page.split('data-testid="seq-scans"')[1].split("</section>")[0]
    assert "public.orders" in seq_scans
    groups = page.split('data-testid="groups"')[1].split("</section>")[0]
    assert "<td>2</td>" in groups  # the two IN-list lengths are one pattern


def test_the_default_threshold_hides_fast_statements(client, operator, make_target, slow_orders):
    target = make_target()
    client.force_login(operator)

    response = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": "100000"})

    assert response.status_code == 200
    assert "No statement averages more than 100000 ms." in response.content.decode()


@pytest.mark.parametrize("threshold", ["fast", "-5", "1e12"])
def test_a_bad_threshold_gets_a_clear_message(client, operator, target, threshold):
    client.force_login(operator)

    response = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": threshold})

    assert response.status_code == 400
    assert 'class="errors"' in response.content.decode()


def test_without_pg_stat_statements_it_says_what_to_do(client, operator, target):
    client.force_login(operator)

    response = client.get(reverse("dbops:queries", args=[target.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="statements-missing"' in page
    assert "CREATE EXTENSION pg_stat_statements;" in page
    assert f"GRANT pg_monitor TO {target.user};" in page


def test_the_instructions_keep_already_preloaded_libraries():
    missing = StatementsStatus(
        state=StatementsStatus.MISSING, database="app", preload="auto_explain"
    )
    not_loaded = StatementsStatus(state=StatementsStatus.NOT_LOADED, database="app", preload="")

    assert missing.preload_statement == (
        "ALTER SYSTEM SET shared_preload_libraries = 'auto_explain, pg_stat_statements';"
    )
    assert missing.needs_preload and missing.needs_create_extension
    assert not_loaded.preload_statement == (
        "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';"
    )
    assert not_loaded.needs_preload and not not_loaded.needs_create_extension


def test_propose_drafts_a_performance_change_with_a_baseline(
    client, operator, tenant, make_target, slow_orders
):
    target = make_target()
    client.force_login(operator)
    page = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": "1"})
    form = _propose_form(page.content.decode())

    response = client.post(form["url"], form["data"])

    change = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("changes:edit", args=[change.pk])
    assert change.type == ChangeType.PERFORMANCE
    assert change.state == State.DRAFT
    assert change.requester == operator
    assert change.title == "Add index on orders(customer_ref)"
    assert (
        'CREATE INDEX CONCURRENTLY "orders_customer_ref_idx" ON "public"."orders" '
        '("customer_ref");' in change.implementation_plan
    )
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "public"."orders_customer_ref_idx"' in (
        change.backout_plan
    )
    assert f"statement {slow_orders}" in change.verification_plan
    assert list(change.components.all()) == [target.component]
    assert list(change.tenants.all()) == [tenant]
    suggestion = IndexSuggestion.objects.get(change=change)
    assert suggestion.columns == ["customer_ref"]
    assert suggestion.queryid == slow_orders
    assert suggestion.calls_before == 5
    assert suggestion.mean_exec_time_before > 0
    assert suggestion.baseline.trigger == QueryStatsSnapshot.Trigger.PROPOSAL
    baseline = suggestion.baseline.statements.get(queryid=slow_orders)
    assert baseline.mean_exec_time == pytest.approx(suggestion.mean_exec_time_before)
    assert suggestion.baseline.tables.filter(name="orders").exists()
    event = AuditEvent.objects.get(action="dbops.index.proposed")
    assert event.object_id == change.public_id
    assert event.details["index"] == "orders_customer_ref_idx"
    assert client.get(response["Location"]).status_code == 200


def test_a_suggestion_an_index_now_covers_is_not_proposed(
    client, operator, make_target, statements_db, slow_orders
):
    target = make_target()
    client.force_login(operator)
    page = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": "1"})
    form = _propose_form(page.content.decode())
    statements_db.run("CREATE INDEX orders_ref_status ON orders (customer_ref, status)")

    response = client.post(form["url"], form["data"], follow=True)
    again = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": "1"})

    assert "That suggestion no longer holds" in response.content.decode()
    assert not ChangeRequest.objects.exists()
    assert "orders(customer_ref)" not in again.content.decode()


def test_a_forged_suggestion_is_refused(client, operator, make_target, slow_orders):
    target = make_target()
    client.force_login(operator)

    response = client.post(
        reverse("dbops:propose", args=[target.pk]),
        {"queryid": slow_orders, "schema": "public", "table": "orders", "column": ["note"]},
        follow=True,
    )

    assert "That suggestion no longer holds" in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_an_incomplete_proposal_is_a_400(client, operator, target):
    client.force_login(operator)

    response = client.post(reverse("dbops:propose", args=[target.pk]), {"queryid": "x"})

    assert response.status_code == 400
    assert not ChangeRequest.objects.exists()
