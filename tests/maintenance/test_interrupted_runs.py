"""An interrupted run waits for a person: run it again, or mark it failed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from changes.models import ChangeRequest, State
from maintenance.models import ProcedureRun
from maintenance.services import execution_advance, run_claim, runs_reap_stale, window_start
from portal.models import AuditEvent
from tests.factories import ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    schedule_all,
    wait_until,
    window_opening_soon,
    with_procedure,
    write_scripts,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def interrupted(tmp_path, settings, requester, operator, tenant):
    settings.MAINTENANCE_SCRIPTS_DIR = str(write_scripts(tmp_path / "scripts"))
    calm_calendar()
    change = with_procedure(
        approved_change(requester, tenant, ComponentFactory(name="claims-api"), title="Job"),
        requester,
        "maintenance_script",
        script="succeed.sh",
        timeout_seconds="60",
    )
    window = window_opening_soon(seconds=1)
    schedule_all([change], window, operator)
    wait_until(lambda: window.is_open(), timeout=5, what="the window to open")
    execution = window_start(window=window, by=operator)
    execution_advance(execution_id=execution.pk)
    run = ProcedureRun.objects.get(change=change)
    run_claim(run_id=run.pk, worker="gone:1")  # a worker took it, then vanished
    assert runs_reap_stale(now=timezone.now() + timedelta(minutes=5)) == 1
    run.refresh_from_db()
    assert run.status == "INTERRUPTED"
    return run


def test_an_operator_runs_an_interrupted_procedure_again(client, operator, interrupted):
    client.force_login(operator)
    response = client.post(reverse("maintenance:run_retry", args=[interrupted.pk]))
    assert response.status_code == 302
    retry = ProcedureRun.objects.get(procedure=interrupted.procedure, attempt=2)
    assert retry.idempotency_key.endswith("-a2")
    execution_advance(execution_id=interrupted.execution_id)
    retry.refresh_from_db()
    assert retry.status == "QUEUED"
    assert AuditEvent.objects.filter(action="run.retried", username="operator").exists()


def test_an_operator_marks_an_interrupted_procedure_failed(client, operator, interrupted):
    client.force_login(operator)
    response = client.post(
        reverse("maintenance:run_abandon", args=[interrupted.pk]),
        {"reason": "host rebooted mid-run"},
    )
    assert response.status_code == 302
    interrupted.refresh_from_db()
    assert interrupted.status == "FAILED" and "host rebooted" in interrupted.error
    execution_advance(execution_id=interrupted.execution_id)
    assert ChangeRequest.objects.get(pk=interrupted.change_id).state == State.FAILED


def test_only_operators_decide_and_a_reason_is_needed(client, requester, operator, interrupted):
    client.force_login(requester)
    assert client.post(reverse("maintenance:run_retry", args=[interrupted.pk])).status_code == 403
    client.force_login(operator)
    response = client.post(reverse("maintenance:run_abandon", args=[interrupted.pk]))
    assert response.status_code == 400
    interrupted.refresh_from_db()
    assert interrupted.status == "INTERRUPTED"
