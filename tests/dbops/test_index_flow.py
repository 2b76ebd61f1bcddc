"""From a slow statement to a built index and its measured effect, through an approved,
scheduled change in an open window."""

from __future__ import annotations

import pytest
from django.urls import reverse

from changes.models import ChangeRequest, State
from changes.services import approval_decide, change_submit
from dbops.models import IndexSuggestion
from dbops.services import index_suggestion_verify
from maintenance import runner
from maintenance.models import ProcedureRun
from maintenance.services import execution_advance, window_start
from portal.models import AuditEvent
from tests.dbops.test_queries import _propose_form
from tests.maintenance.execution_helpers import (
    calm_calendar,
    schedule_all,
    wait_until,
    window_opening_soon,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_running_the_proposed_change_builds_the_index_and_the_mean_time_drops(
    client, operator, engineer, tenant, make_target, slow_orders, statements_db
):
    calm_calendar()
    target = make_target(tenants=[tenant])
    client.force_login(operator)
    page = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": "1"})
    form = _propose_form(page.content.decode())
    client.post(form["url"], form["data"])
    change = ChangeRequest.objects.get()
    assert [p.kind for p in change.procedures.all()] == ["db_create_index"]

    change = change_submit(change=change, by=operator)
    assert change.approvals.get().role == "ENGINEERING"
    approval_decide(approval=change.approvals.get(), by=engineer, decision="APPROVED")
    window = window_opening_soon(seconds=1)
    schedule_all([change], window, operator)
    wait_until(lambda: window.is_open(), timeout=5, what="the window to open")
    execution = window_start(window=window, by=operator)
    execution_advance(execution_id=execution.pk)
    run = ProcedureRun.objects.get(change=change)
    runner.execute_run(run_id=run.pk)
    run.refresh_from_db()

    assert run.status == "SUCCEEDED", run.error
    assert run.steps.get(name="The index is valid").result["valid"] is True
    assert run.steps.get(name="Mean time before and after").result["status"] == "awaiting calls"
    with statements_db.connect() as conn:
        assert conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_customer_ref_idx'::regclass"
        ).fetchone()[0]
        # The application runs the statement again, now served by the index.
        for ref in (11, 222, 3333, 4444, 5555):
            conn.execute("SELECT * FROM orders WHERE customer_ref = %s", [ref])
        conn.execute("SELECT pg_stat_force_next_flush()")

    suggestion = index_suggestion_verify(
        suggestion=IndexSuggestion.objects.get(change=change), by=operator
    )
    assert suggestion.calls_after == suggestion.calls_before + 5
    assert suggestion.mean_exec_time_after < suggestion.mean_exec_time_before
    event = AuditEvent.objects.get(action="dbops.index.verified")
    assert event.object_id == change.public_id and event.details["improvement_percent"] > 0
    execution_advance(execution_id=execution.pk)
    assert ChangeRequest.objects.get(pk=change.pk).state == State.COMPLETED
    detail = client.get(change.get_absolute_url()).content.decode()
    assert 'data-testid="index-effect"' in detail and "not measured yet" not in detail
