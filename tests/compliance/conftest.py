"""Compliance fixtures: changes in two tenants, one that ran with runs, steps, approvals
and a review, and helpers to read CSV and XLSX downloads."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from changes.models import Approval, Category, PostImplementationReview, State
from maintenance.models import (
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceWindow,
    ProcedureRun,
    ScheduledChange,
    StepRun,
    WindowType,
)
from portal.audit import audit_record
from tests.factories import ChangeRequestFactory, ComponentFactory


@pytest.fixture
def component(db):
    return ComponentFactory(name="claims-db")


@pytest.fixture
def make_change(db, requester, tenant, component):
    def make(**kwargs):
        kwargs.setdefault("requester", requester)
        kwargs.setdefault("tenants", [tenant])
        kwargs.setdefault("components", [component])
        return ChangeRequestFactory(**kwargs)

    return make


@pytest.fixture
def other_change(db, other_tenant, make_user):
    """A change of the other tenant: never visible to our tenant's users."""
    stranger = make_user("stranger", ["REQUESTER"], tenants=[other_tenant])
    return ChangeRequestFactory(
        title="Globex private change",
        requester=stranger,
        tenants=[other_tenant],
        components=[ComponentFactory(name="globex-db")],
    )


@pytest.fixture
def ran_change(db, make_change, security, operator, compliance):
    """A completed, reviewed change that ran a script in a window: every section of an
    evidence pack has something in it."""
    now = timezone.now()
    change = make_change(
        title="Rotate the claims database password",
        state=State.COMPLETED,
        category=Category.STANDARD,
        risk_level="LOW",
        risk_score=12,
        risk_factors=[
            {"key": "priority", "label": "Priority", "value": "MEDIUM", "points": 5, "why": "x"},
            {"key": "tenants", "label": "Tenants", "value": "1", "points": 7, "why": "y"},
        ],
        outcome="SUCCESSFUL",
        submitted_at=now - timedelta(days=3),
        decided_at=now - timedelta(days=2),
        executed_at=now - timedelta(hours=2),
    )
    approval = Approval.objects.create(
        change=change,
        role="SECURITY",
        status=Approval.Status.APPROVED,
        decided_by=security,
        decided_at=now - timedelta(days=2),
        comments="Fine by security.",
        required_because="SECURITY changes need Security",
    )
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=now - timedelta(hours=3),
        duration_minutes=120,
        notification_offsets=[60],
        title="Sunday window",
        status=MaintenanceWindow.Status.COMPLETED,
    )
    execution = MaintenanceExecution.objects.create(
        window=window,
        planned_at=window.start,
        started_at=window.start,
        completed_at=now - timedelta(hours=1),
        status=MaintenanceExecution.Status.COMPLETED,
        started_by=operator,
    )
    ScheduledChange.objects.create(
        window=window,
        change=change,
        position=1,
        planned_start=window.start,
        planned_minutes=60,
        scheduled_by=operator,
    )
    procedure = ChangeProcedure.objects.create(
        change=change,
        position=1,
        kind="maintenance_script",
        params={"script": "rotate.sh", "arguments": [], "timeout_seconds": 60},
        added_by=change.requester,
    )
    run = ProcedureRun.objects.create(
        procedure=procedure,
        change=change,
        execution=execution,
        idempotency_key=f"run-{change.pk}",
        status=ProcedureRun.Status.SUCCEEDED,
        queued_at=window.start,
        started_at=window.start,
        finished_at=window.start + timedelta(minutes=3),
        result={"script_result": {"script": "rotate.sh", "exit_code": 0, "seconds": 1.2}},
    )
    StepRun.objects.create(
        run=run,
        position=1,
        kind=StepRun.Kind.STEP,
        name="Run rotate.sh",
        status=StepRun.Status.SUCCEEDED,
        started_at=window.start,
        finished_at=window.start + timedelta(minutes=2),
        output="rotating\nall good\n",
    )
    PostImplementationReview.objects.create(
        change=change, outcome="SUCCESSFUL", notes="Went to plan.", reviewed_by=operator
    )
    audit_record(action="change.submitted", user=change.requester, obj=change)
    audit_record(action="approval.approved", user=security, role="SECURITY", obj=change)
    audit_record(action="change.completed", obj=change)
    change.approval = approval
    return change


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def xlsx_rows(content: bytes) -> list[list]:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(content), read_only=True).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]
