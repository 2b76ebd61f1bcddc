"""Schemathesis against /api/schema/: property-based requests to every operation, made
in-process through the WSGI application with a real token of a user who has data (a
change awaiting their decision, a draft of their own, a window with a scheduled change,
an approved template). No answer is a 5xx and every answer is one the schema documents:
its status code, its content type and its body. The stateful run follows the schema's
links from a created change to reading, editing, submitting and cancelling it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from django.core.files.base import ContentFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from changes.services import change_submit, template_approval_decide, template_propose
from compliance.models import ExportJob
from maintenance.models import (
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceWindow,
    ProcedureRun,
    StepRun,
    WindowType,
)
from maintenance.services import slot_create
from portal.wsgi import application
from tests.api.conftest import change_body
from tests.factories import ChangeRequestFactory
from tests.maintenance.execution_helpers import calm_calendar

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
BOUNDED = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def pipeline(make_user):
    """Files changes, approves engineering work and sees the register: most of the API."""
    return make_user("pipeline", ["REQUESTER", "ENGINEERING", "OPERATIONS", "COMPLIANCE"])


def _run(change, window, by) -> ProcedureRun:
    execution = MaintenanceExecution.objects.create(
        window=window, planned_at=window.start, status="IN_PROGRESS", started_at=window.start
    )
    item = ChangeProcedure.objects.create(
        change=change, position=1, kind="manual_checklist",
        params={"steps": ["Drain node A"], "estimated_minutes": 10}, added_by=by,
    )  # fmt: skip
    run = ProcedureRun.objects.create(
        procedure=item, change=change, execution=execution,
        idempotency_key=f"schema-{item.pk}", status="WAITING",
    )  # fmt: skip
    StepRun.objects.create(run=run, position=1, kind="STEP", name="Drain node A")
    return run


@pytest.fixture
def existing(requester, pipeline, security, tenant, component, settings) -> dict[str, int]:
    """One object of each kind the pipeline may see, by the API path that reads it."""
    settings.API_RATE_LIMIT_PER_MINUTE = 100_000
    calm_calendar()
    awaiting = ChangeRequestFactory(
        requester=requester,
        type="FEATURE",
        tenants=[tenant],
        components=[component],
        proposed_start=timezone.now() + timedelta(days=10),
    )
    change_submit(change=awaiting, by=requester)
    draft = ChangeRequestFactory(requester=pipeline, tenants=[tenant], components=[component])
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=(timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0),
        duration_minutes=240,
        notification_offsets=[60],
    )
    scheduled = ChangeRequestFactory(
        requester=requester, state="approved", tenants=[tenant], components=[component]
    )
    slot_create(change=scheduled, window=window, by=pipeline)
    running = ChangeRequestFactory(
        requester=requester, state="in_progress", tenants=[tenant], components=[component]
    )
    run = _run(running, window, requester)
    version = template_propose(
        by=requester,
        data={
            "name": "Rotate TLS certificates",
            "title_pattern": "Rotate TLS certificates on {component} for {tenant}",
            "description": "Replace the expiring certificates on the edge.",
            "type": "SECURITY",
            "implementation_plan": "Deploy the new bundle with the rollout tool.",
            "backout_plan": "Redeploy the previous bundle.",
            "verification_plan": "Check the served certificate's expiry date.",
            "max_window_minutes": 60,
            "risk_ceiling": 30,
        },
        components=[component],
        tenants=[tenant],
    )
    template_approval_decide(
        approval=version.approvals.get(role="SECURITY"), by=security, decision="APPROVED"
    )
    job = ExportJob.objects.create(
        exporter="changes", format="csv", requested_by=pipeline, status="DONE",
        filename="changes.csv", content_type="text/csv", rows_total=1, rows_done=1,
    )  # fmt: skip
    job.file.save("schema-changes.csv", ContentFile(b"id,title\n1,Rotate\n"), save=True)
    return {
        "/api/changes/{id}/": draft.pk,
        "/api/changes/{id}/submit/": draft.pk,
        "/api/changes/{id}/cancel/": awaiting.pk,
        "/api/approvals/{id}/": awaiting.approvals.get().pk,
        "/api/approvals/{id}/decide/": awaiting.approvals.get().pk,
        "/api/windows/{id}/": window.pk,
        "/api/runs/{id}/": run.pk,
        "/api/templates/{id}/file/": version.template.pk,
        "/api/exports/{id}/": job.pk,
        "/api/exports/{id}/download/": job.pk,
    }


@pytest.fixture
def bearer(existing, pipeline, token_for) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(pipeline)}"}


def in_test_transaction(environ, start_response):
    """The portal's WSGI application, leaving the test's connection open after each
    request as Django's own test client does (it would close it: inside the test's
    transaction autocommit is off, which close_old_connections takes for obsolete)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(bearer):
    return schemathesis.openapi.from_wsgi("/api/schema/", in_test_transaction, headers=bearer)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@BOUNDED
def test_every_answer_is_one_the_schema_documents(case, bearer, existing):
    case.call_and_validate(headers=bearer, checks=CHECKS)
    if case.path_parameters and case.operation.path in existing:
        # Random ids are rarely an object's: ask again about one that exists.
        case.path_parameters = {"id": existing[case.operation.path]}
        case.call_and_validate(headers=bearer, checks=CHECKS)


def test_following_the_links_from_a_created_change_keeps_to_the_schema(
    api_schema, bearer, component, tenant
):
    """Create a change, then read, edit, submit or cancel it as the schema's links say."""
    answered: list[tuple[str, int]] = []

    class Pipeline(api_schema.as_state_machine()):
        def before_call(self, case):
            # A pipeline names a component and tenant that exist, and a future start;
            # the rest of the body is whatever Hypothesis makes of the schema.
            if case.operation.label == "POST /api/changes/" and isinstance(case.body, dict):
                case.body.update(
                    components=[component.name],
                    tenants=[tenant.slug],
                    proposed_start=(timezone.now() + timedelta(days=10)).isoformat(),
                )

        def get_call_kwargs(self, case):
            return {"headers": bearer}

        def after_call(self, response, case):
            super().after_call(response, case)
            answered.append((case.operation.label, response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, headers=bearer)

    Pipeline.run(
        settings=settings(
            max_examples=10,
            stateful_step_count=5,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )

    assert ("POST /api/changes/", 201) in answered
    followed = {label for label, status in answered if "{id}" in label and status < 400}
    assert followed, f"no link from a created change was followed: {answered}"


# What the runs above found, pinned.


def test_a_path_the_api_does_not_have_answers_a_problem_not_an_html_page(api_as, pipeline):
    for api in (api_as(pipeline), api_as(None)):
        response = api.get("/api/changes/null,null/")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["detail"] == "No such API endpoint: GET /api/changes/null,null/."


def test_a_component_named_with_a_nul_is_unknown_not_a_database_error(
    api_as, pipeline, component, tenant
):
    response = api_as(pipeline).post(
        "/api/changes/", change_body(component, tenant, components=["edge\x00proxy"])
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["components"]


def test_a_tenant_filter_with_a_nul_is_an_unknown_tenant_not_a_database_error(api_as, pipeline):
    response = api_as(pipeline).get("/api/changes/", {"tenant": "ac\x00me"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"tenant": ["No tenant with that slug."]}


def test_a_change_not_yet_assessed_has_no_risk_level_or_category(api_as, pipeline, existing):
    draft = existing["/api/changes/{id}/"]
    body = api_as(pipeline).get(f"/api/changes/{draft}/").json()
    assert (body["risk_level"], body["category"], body["risk_score"]) == (None, None, None)
