"""The permission matrix over every URL of every app (issue 8, "tests that must exist").

``test_every_url_is_in_a_matrix`` walks ``portal.urls`` and fails, naming them, for the
URL names no matrix covers: the rows below, or the per-app matrices, which expose what
they cover (``ENDPOINTS`` and the lists they request). A new URL needs a row.

Each row is one endpoint on an object of the user's own tenant ("own") or of another
tenant ("other"), requested with its method, for every role: the status it must answer
(200, 204, 302, 400, 403, 404; LOGIN is the sign-in redirect). A refused or read-only
request writes nothing (the main tables and the non-DENIED audit rows are compared); a
permitted POST writes what it says; a page on a shared object (a window, a report, the
calendar) never names a change of a tenant the viewer may not see. Every POST-only URL
answers a GET with 405 and writes nothing.

``outsider`` holds every creator and approver role but sees only the other tenant, so
"own" for them is that tenant's object and "other" is ours.
"""

from __future__ import annotations

import inspect
import io
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from pypdf import PdfReader

from changes.models import Approval, ChangeRequest, CorrectiveAction, PostImplementationReview
from changes.services import approval_delegate, change_submit
from maintenance.models import (
    CalendarFeedToken,
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceWindow,
    ProcedureRun,
    ScheduledChange,
    StepRun,
    WindowApproval,
    WindowType,
)
from maintenance.services import emergency_window_request, window_approval_delegate
from portal.models import AuditEvent, Notification, WorkerHeartbeat
from tests.factories import ChangeRequestFactory, urgent_change
from tests.matrix import LOGIN, ROLES

pytestmark = pytest.mark.django_db

_ = None  # the endpoint names no tenant's object


@dataclass
class Side:
    """One tenant's people and objects: the viewer's own, or another tenant's."""

    tenant: Any
    requester: Any
    delegator: Any  # a SECURITY approver of this tenant who delegates
    label: str


@dataclass
class Target:
    args: list = field(default_factory=list)
    query: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    # A change title a viewer who may not see that change must never read on the page.
    secret: str = ""
    secret_from_everyone: bool = False  # the content is another user's (a feed)
    obj: Any = None


@dataclass
class World:
    people: Any
    own: Side
    other: Side
    user: Any
    deputy: Any

    def fixture(self, name: str):
        return self.people.user(name)


# --- objects each endpoint acts on --------------------------------------------------------


def _change(side: Side, **kwargs) -> ChangeRequest:
    kwargs.setdefault("requester", side.requester)
    kwargs.setdefault("category", "STANDARD")
    kwargs.setdefault("title", f"{side.label} change {ChangeRequest.objects.count() + 1}")
    return ChangeRequestFactory(tenants=[side.tenant], **kwargs)


def _window(*, start, status="PLANNED", minutes=240) -> MaintenanceWindow:
    return MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=start,
        duration_minutes=minutes,
        notification_offsets=[60],
        status=status,
        title=f"Window {MaintenanceWindow.objects.count() + 1}",
    )


def _slot(window, change, world: World) -> ScheduledChange:
    return ScheduledChange.objects.create(
        window=window,
        change=change,
        position=window.scheduled_changes.count() + 1,
        planned_start=window.start,
        planned_minutes=30,
        scheduled_by=world.fixture("superuser"),
    )


def _running_checklist(world: World, side: Side, *, status: str) -> ProcedureRun:
    change = _change(side, state="in_progress")
    window = _window(start=timezone.now() - timedelta(minutes=10), status="IN_PROGRESS")
    _slot(window, change, world)
    execution = MaintenanceExecution.objects.create(
        window=window, planned_at=window.start, status="IN_PROGRESS", started_at=window.start
    )
    item = ChangeProcedure.objects.create(
        change=change,
        position=1,
        kind="manual_checklist",
        params={"steps": ["Drain node A"], "estimated_minutes": 10},
        added_by=side.requester,
    )
    run = ProcedureRun.objects.create(
        procedure=item,
        change=change,
        execution=execution,
        idempotency_key=f"matrix-{item.pk}",
        status=status,
        started_at=window.start,
    )
    StepRun.objects.create(run=run, position=1, kind="STEP", name="Drain node A")
    return run


def _reviewed(side: Side, change: ChangeRequest) -> ChangeRequest:
    PostImplementationReview.objects.create(
        change=change, outcome="SUCCESSFUL", notes="Went to plan.", reviewed_by=side.requester
    )
    return change


def _in_review_security_approval(side: Side) -> Approval:
    change = change_submit(
        change=_change(side, type="SECURITY", priority="LOW", category=""), by=side.requester
    )
    return change.approvals.get(role="SECURITY")


def _emergency(world: World) -> WindowApproval:
    window = emergency_window_request(
        by=world.fixture("superuser"),
        start=timezone.now() + timedelta(minutes=90),
        duration_minutes=60,
        reason="Hotfix",
    )
    return WindowApproval.objects.get(window=window, role="CTO")


def _target_for(world: World, side: Side):
    from dbops.services import database_target_create

    return database_target_create(
        by=world.fixture("superuser"),
        data={"name": f"{side.label}-db", "host": "127.0.0.1", "port": 1, "database": "x",
              "user": "monitor", "sslmode": "disable"},
        password="never-shown",
        tenants=[side.tenant],
    )  # fmt: skip


def _suggestion(world: World, side: Side):
    from dbops.models import IndexSuggestion, QueryStatsSnapshot

    target = _target_for(world, side)
    change = _change(side, type="PERFORMANCE", state="completed", components=[target.component])
    snapshot = QueryStatsSnapshot.objects.create(
        target=target, taken_at=timezone.now(), trigger="PROPOSAL"
    )
    return IndexSuggestion.objects.create(
        target=target,
        change=change,
        schema="public",
        table="orders",
        columns=["customer_ref"],
        index_name="orders_customer_ref_idx",
        create_sql="CREATE INDEX CONCURRENTLY ...",
        drop_sql="DROP INDEX CONCURRENTLY ...",
        queryid=42,
        query="SELECT 1",
        baseline=snapshot,
        mean_exec_time_before=12.5,
        calls_before=5,
        proposed_by=world.fixture("superuser"),
    )


def _stored_report(world: World, side: Side) -> Target:
    change = _change(side, state="completed", outcome="SUCCESSFUL")
    window = _window(start=timezone.now() - timedelta(days=1), status="COMPLETED")
    _slot(window, change, world)
    execution = MaintenanceExecution.objects.create(
        window=window,
        planned_at=window.start,
        started_at=window.start,
        completed_at=window.start + timedelta(minutes=30),
        status="COMPLETED",
    )
    execution.report.save("complete-report.pdf", ContentFile(b"%PDF-1.4 stored"), save=True)
    return Target(args=[window.pk], secret=change.title, obj=window)


def _open_window(world: World, side: Side) -> Target:
    change = _change(side, state="scheduled")
    window = _window(start=timezone.now() - timedelta(minutes=1))
    _slot(window, change, world)
    return Target(args=[window.pk], secret=change.title, obj=window)


def _build(kind: str, world: World, side: Side) -> Target:
    if kind == "":
        return Target()
    if kind == "in_progress":
        return Target(args=[_change(side, state="in_progress").pk], data={"notes": "by hand"})
    if kind == "verifying":
        change = _change(side, state="verifying")
        return Target(
            args=[change.pk], data={"notes": "Checked the served version.", "passed": "1"}
        )
    if kind == "completed":
        change = _change(side, state="completed", outcome="SUCCESSFUL")
        return Target(args=[change.pk], data={"outcome": "SUCCESSFUL", "notes": "Went to plan."})
    if kind == "reviewed":
        change = _reviewed(side, _change(side, state="completed", outcome="SUCCESSFUL"))
        return Target(args=[change.pk])
    if kind == "refused":
        change = urgent_change(
            state="completed", outcome="SUCCESSFUL", requester=side.requester, tenants=[side.tenant]
        )
        _reviewed(side, change)
        change.approvals.filter(role="SECURITY").update(
            status="REJECTED", decided_by=side.delegator, comments="Not ratified."
        )
        return Target(args=[change.pk], data={"note": "INC-4411 opened."})
    if kind == "delegated":
        approval = _in_review_security_approval(side)
        approval_delegate(approval=approval, by=side.delegator, to_user=world.deputy)
        return Target(args=[approval.pk])
    if kind == "open_window":
        return _open_window(world, side)
    if kind == "ran_window":
        return _stored_report(world, side)
    if kind == "approved":
        change = _change(side, state="approved", risk_level="LOW", risk_score=10)
        window = _window(start=timezone.now() + timedelta(days=3))
        return Target(args=[change.pk], data={"window": window.pk})
    if kind == "scheduled":
        change = _change(side, state="scheduled")
        _slot(_window(start=timezone.now() + timedelta(days=3)), change, world)
        return Target(args=[change.pk], data={"reason": "Moved to next week."})
    if kind == "draft":
        change = _change(side)
        return Target(
            args=[change.pk],
            query={"kind": "manual_checklist"},
            data={"kind": "manual_checklist", "steps": "Drain\nSwitch", "estimated_minutes": "10"},
        )
    if kind == "procedure":
        change = _change(side)
        item = ChangeProcedure.objects.create(
            change=change,
            position=1,
            kind="manual_checklist",
            params={"steps": ["Drain"], "estimated_minutes": 10},
            added_by=side.requester,
        )
        return Target(args=[item.pk])
    if kind == "waiting_step":
        run = _running_checklist(world, side, status="WAITING")
        return Target(
            args=[run.steps.get().pk], data={"evidence": "Done, ticket #12", "passed": "1"}
        )
    if kind == "run":
        return Target(args=[_running_checklist(world, side, status="SUCCEEDED").pk])
    if kind == "interrupted":
        run = _running_checklist(world, side, status="INTERRUPTED")
        return Target(args=[run.pk], data={"reason": "The node was rebuilt; not needed."})
    if kind == "emergency":
        approval = _emergency(world)
        return Target(
            args=[approval.pk],
            data={"decision": "APPROVED", "comment": "Go.", "version": approval.version,
                  "username": "deputy", "days": "7"},
        )  # fmt: skip
    if kind == "emergency_delegated":
        approval = _emergency(world)
        window_approval_delegate(approval=approval, by=world.fixture("cto"), to_user=world.deputy)
        return Target(args=[approval.pk])
    if kind == "suggestion":
        return Target(args=[_suggestion(world, side).pk])
    if kind == "notification":
        if world.user is not None:
            Notification.objects.create(recipient=world.user, subject="Something happened")
        return Target()
    if kind == "feed":
        token = CalendarFeedToken.objects.create(user=world.own.requester)
        hidden = _open_window(world, world.other)
        return Target(args=[token.token], secret=hidden.secret, secret_from_everyone=True)
    if kind == "calendar":
        hidden = _open_window(world, world.other)
        _open_window(world, world.own)
        return Target(secret=hidden.secret)
    if kind == "emergency_form":
        start = timezone.localtime() + timedelta(hours=3)
        return Target(
            data={"start": start.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": "60",
                  "reason": "CVE hotfix"}
        )  # fmt: skip
    if kind == "token":
        return Target(data={"action": "create"})
    if kind == "stakeholders":
        target = _open_window(world, side)
        target.data = {"usernames": "", "roles": ["SECURITY"], "emails": "oncall@acme.example",
                       "timezone": "Europe/Berlin"}  # fmt: skip
        return target
    if kind == "heartbeat":
        WorkerHeartbeat.objects.create(hostname="matrix-worker", last_seen=timezone.now())
        return Target()
    raise AssertionError(f"no builder for {kind!r}")


# --- the rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    url_name: str
    method: str
    target: str
    # A permitted request writes something (a POST that may legitimately change nothing,
    # such as a measurement that cannot reach its target, says False).
    writes: bool = True


ENDPOINTS = {
    # portal
    "dashboard": Endpoint("portal:dashboard", "get", ""),
    "preferences": Endpoint("portal:preferences", "get", ""),
    "notifications": Endpoint("portal:notifications", "get", ""),
    "notifications_read": Endpoint("portal:notifications_read", "post", "notification"),
    "healthz": Endpoint("healthz", "get", "heartbeat"),
    "favicon": Endpoint("favicon.ico", "get", ""),
    "login": Endpoint("login", "get", ""),
    "logout": Endpoint("logout", "post", "", writes=False),
    # changes: what tests/changes/test_permission_matrix.py does not request
    "implemented": Endpoint("changes:implemented", "post", "in_progress"),
    "verify": Endpoint("changes:verify", "post", "verifying"),
    "review_page": Endpoint("changes:review", "get", "completed"),
    "review": Endpoint("changes:review", "post", "completed"),
    "close": Endpoint("changes:close", "post", "reviewed"),
    "correct": Endpoint("changes:correct", "post", "refused"),
    "revoke_delegation": Endpoint("changes:revoke_delegation", "post", "delegated"),
    # maintenance
    "window": Endpoint("maintenance:window", "get", "open_window"),
    "window_start": Endpoint("maintenance:window_start", "post", "open_window"),
    "window_subscribe": Endpoint("maintenance:window_subscribe", "post", "open_window"),
    "report": Endpoint("maintenance:report", "get", "ran_window"),
    "report_pdf": Endpoint("maintenance:report_pdf", "get", "ran_window"),
    "schedule_page": Endpoint("maintenance:schedule", "get", "approved"),
    "schedule": Endpoint("maintenance:schedule", "post", "approved"),
    "unschedule": Endpoint("maintenance:unschedule", "post", "scheduled"),
    "procedure_form": Endpoint("maintenance:procedure_add", "get", "draft"),
    "procedure_add": Endpoint("maintenance:procedure_add", "post", "draft"),
    "procedure_remove": Endpoint("maintenance:procedure_remove", "post", "procedure"),
    "step_complete": Endpoint("maintenance:step_complete", "post", "waiting_step"),
    "run": Endpoint("maintenance:run", "get", "run"),
    "run_retry": Endpoint("maintenance:run_retry", "post", "interrupted"),
    "run_abandon": Endpoint("maintenance:run_abandon", "post", "interrupted"),
    # calendar and emergency windows
    "month": Endpoint("calendar:month", "get", "calendar"),
    "week": Endpoint("calendar:week", "get", "calendar"),
    "feed": Endpoint("calendar:feed", "get", "feed"),
    "token": Endpoint("calendar:token", "post", "token"),
    "emergency_form": Endpoint("calendar:emergency_new", "get", ""),
    "emergency_new": Endpoint("calendar:emergency_new", "post", "emergency_form"),
    "window_decide": Endpoint("calendar:window_decide", "post", "emergency"),
    "window_delegate": Endpoint("calendar:window_delegate", "post", "emergency"),
    "window_revoke": Endpoint("calendar:window_revoke", "post", "emergency_delegated"),
    # dbops: what its own matrices do not request
    "verify_index": Endpoint("dbops:verify_index", "post", "suggestion", writes=False),
    "window_stakeholders": Endpoint("maintenance:window_stakeholders", "post", "stakeholders"),
}

# fmt: off
MATRIX = {
    # endpoint, whose            requester eng  ops  sec  compliance cto  ciso outsider anonymous
    ("dashboard", _):            (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("preferences", _):          (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("notifications", _):        (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("notifications_read", _):   (302,      302, 302, 302, 302,       302, 302, 302,     LOGIN),
    ("healthz", _):              (200,      200, 200, 200, 200,       200, 200, 200,     200),
    ("favicon", _):              (204,      204, 204, 204, 204,       204, 204, 204,     204),
    ("login", _):                (302,      302, 302, 302, 302,       302, 302, 302,     200),
    ("logout", _):               (302,      302, 302, 302, 302,       302, 302, 302,     302),
    # Only operators carry a change out; the requester or an operator documents and
    # closes it; the Head of Security or Compliance corrects a refused ratification.
    ("implemented", "own"):      (403,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("implemented", "other"):    (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("verify", "own"):           (403,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("verify", "other"):         (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("review_page", "own"):      (200,      403, 200, 403, 403,       403, 403, 200,     LOGIN),
    ("review_page", "other"):    (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("review", "own"):           (302,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("review", "other"):         (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("close", "own"):            (302,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("close", "other"):          (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("correct", "own"):          (403,      403, 403, 403, 302,       403, 302, 403,     LOGIN),
    ("correct", "other"):        (404,      404, 404, 404, 302,       404, 404, 404,     LOGIN),
    # The delegator or a holder of the role revokes.
    ("revoke_delegation", "own"):   (403,   403, 403, 302, 403,       403, 403, 302,     LOGIN),
    ("revoke_delegation", "other"): (404,   404, 404, 404, 403,       404, 404, 404,     LOGIN),
    # Windows are shared: everyone who files or runs changes sees them, with the
    # changes they may not see left unnamed; only an operator starts one.
    ("window", "own"):           (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("window", "other"):         (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("window_start", "own"):     (403,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("window_start", "other"):   (403,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("window_subscribe", "own"): (302,      302, 302, 302, 302,       302, 302, 302,     LOGIN),
    ("window_subscribe", "other"): (302,    302, 302, 302, 302,       302, 302, 302,     LOGIN),
    ("report", "own"):           (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("report", "other"):         (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("report_pdf", "own"):       (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("report_pdf", "other"):     (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    # Operators schedule; the requester or an operator edits a change's procedures.
    ("schedule_page", "own"):    (403,      403, 200, 403, 403,       403, 403, 200,     LOGIN),
    ("schedule_page", "other"):  (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("schedule", "own"):         (403,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("schedule", "other"):       (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("unschedule", "own"):       (403,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("unschedule", "other"):     (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("procedure_form", "own"):   (200,      403, 200, 403, 403,       403, 403, 200,     LOGIN),
    ("procedure_form", "other"): (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("procedure_add", "own"):    (302,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("procedure_add", "other"):  (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("procedure_remove", "own"): (302,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("procedure_remove", "other"): (404,    404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("step_complete", "own"):    (403,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("step_complete", "other"):  (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("run", "own"):              (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("run", "other"):            (404,      404, 404, 404, 200,       404, 404, 404,     LOGIN),
    ("run_retry", "own"):        (403,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("run_retry", "other"):      (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    ("run_abandon", "own"):      (403,      403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("run_abandon", "other"):    (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    # The calendar is for everyone who files or runs changes; the feed's token is its
    # own credential; the CTO and the Head of Security decide emergency windows.
    ("month", _):                (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("week", _):                 (200,      200, 200, 200, 200,       200, 200, 200,     LOGIN),
    ("feed", _):                 (200,      200, 200, 200, 200,       200, 200, 200,     200),
    ("token", _):                (302,      302, 302, 302, 302,       302, 302, 302,     LOGIN),
    ("emergency_form", _):       (200,      200, 200, 200, 403,       403, 403, 200,     LOGIN),
    ("emergency_new", _):        (302,      302, 302, 302, 403,       403, 403, 302,     LOGIN),
    ("window_decide", _):        (403,      403, 403, 403, 403,       302, 403, 403,     LOGIN),
    ("window_delegate", _):      (403,      403, 403, 403, 403,       302, 403, 403,     LOGIN),
    ("window_revoke", _):        (403,      403, 403, 403, 403,       302, 403, 403,     LOGIN),
    # Database operations are for Operations and Engineering, on changes they may see.
    ("verify_index", "own"):     (403,      302, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("verify_index", "other"):   (404,      404, 404, 404, 403,       404, 404, 404,     LOGIN),
    # Operators name a shared window's stakeholders.
    ("window_stakeholders", "own"):   (403, 403, 302, 403, 403,       403, 403, 302,     LOGIN),
    ("window_stakeholders", "other"): (403, 403, 302, 403, 403,       403, 403, 302,     LOGIN),
}
# fmt: on
assert {endpoint for endpoint, _ in MATRIX} == set(ENDPOINTS), "an endpoint has no row"

CASES = [
    pytest.param(endpoint, whose, role, expected, id=f"{endpoint}-{whose or 'page'}-{role}")
    for (endpoint, whose), row in MATRIX.items()
    for role, expected in zip(ROLES, row, strict=True)
]


# --- what the matrix may not change ------------------------------------------------------


def _snapshot() -> tuple:
    """The main tables' state and the audit rows that are not refusals."""
    return (
        list(ChangeRequest.objects.order_by("pk").values_list("pk", "state", "version")),
        list(
            Approval.objects.order_by("pk").values_list("pk", "status", "delegated_to", "version")
        ),
        list(WindowApproval.objects.order_by("pk").values_list("pk", "status", "delegated_to")),
        list(MaintenanceWindow.objects.order_by("pk").values_list("pk", "status")),
        list(ScheduledChange.objects.order_by("pk").values_list("pk", "window", "change")),
        list(ChangeProcedure.objects.order_by("pk").values_list("pk", "change")),
        list(ProcedureRun.objects.order_by("pk").values_list("pk", "status")),
        list(StepRun.objects.order_by("pk").values_list("pk", "status")),
        PostImplementationReview.objects.count(),
        CorrectiveAction.objects.count(),
        list(CalendarFeedToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        Notification.objects.filter(read_at__isnull=False).count(),
        MaintenanceWindow.subscribers.through.objects.count(),
        AuditEvent.objects.exclude(outcome="DENIED").count(),
    )


def _url(spec: Endpoint, target: Target) -> str:
    if spec.url_name == "favicon.ico":
        return "/favicon.ico"
    url = reverse(spec.url_name, args=target.args)
    if target.query and spec.method == "get":
        url += "?" + "&".join(f"{k}={v}" for k, v in target.query.items())
    return url


def _body(response) -> str:
    if response.get("Content-Type", "").startswith("application/pdf"):
        data = b"".join(response.streaming_content) if response.streaming else response.content
        if not data.startswith(b"%PDF-1.4 stored"):
            return "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
        return data.decode()
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


@pytest.fixture(scope="module")
def sides(people, module_rows):
    """Both tenants' people, made once for the module."""
    with module_rows.make():
        their_requester = people.make_user(
            "their-requester", ["REQUESTER"], tenants=[people.other_tenant]
        )
        acme = Side(
            tenant=people.tenant,
            requester=people.user("requester"),
            delegator=people.make_user("acme-security", ["SECURITY"]),
            label="acme",
        )
        globex = Side(
            tenant=people.other_tenant,
            requester=their_requester,
            delegator=people.make_user(
                "globex-security", ["SECURITY"], tenants=[people.other_tenant]
            ),
            label="globex",
        )
        deputy = people.make_user(
            "deputy", ["ENGINEERING"], tenants=[people.tenant, people.other_tenant]
        )
    return acme, globex, deputy


@pytest.fixture
def world(people, sides, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    from maintenance.models import MaintenancePolicy

    # Scheduling into the test's windows is about permissions, not the freeze calendar.
    MaintenancePolicy.objects.update(end_of_month_days=0, holiday_country="", holiday_market="")
    acme, globex, deputy = sides
    return lambda role: World(
        people=people,
        own=globex if role == "outsider" else acme,
        other=acme if role == "outsider" else globex,
        user=people.user(role),
        deputy=deputy,
    )


@pytest.mark.parametrize(("endpoint", "whose", "role", "expected"), CASES)
def test_permission_matrix(client, world, endpoint, whose, role, expected):
    spec = ENDPOINTS[endpoint]
    w = world(role)
    side = w.other if whose == "other" else w.own
    target = _build(spec.target, w, side)
    if w.user is not None:
        client.force_login(w.user)
    before = _snapshot()

    response = getattr(client, spec.method)(_url(spec, target), target.data)

    if expected == LOGIN:
        assert response.status_code == 302, response.status_code
        assert response["Location"].startswith(f"{reverse('login')}?next=")
    else:
        assert response.status_code == expected, _body(response)[:800]
    after = _snapshot()
    if expected in (403, 404, LOGIN) or spec.method == "get":
        assert after == before, "a refused or read-only request wrote something"
    elif expected == 302 and spec.writes:
        assert after != before, "a permitted request wrote nothing"
    if expected == 200 and target.secret:
        body = _body(response)
        may_see = role == "compliance" and not target.secret_from_everyone
        if body.startswith("%PDF-1.4 stored"):
            # The stored, complete report: only for a viewer who may see all of it.
            assert may_see or whose == "own", "the complete report went to a partial viewer"
        elif whose == "other" or spec.target in ("calendar", "feed"):
            assert (target.secret in body) == may_see, "another tenant's change is named"


# --- POST-only URLs refuse a GET --------------------------------------------------------

POST_ONLY = sorted(
    {spec.url_name for spec in ENDPOINTS.values() if spec.method == "post"}
    - {spec.url_name for spec in ENDPOINTS.values() if spec.method == "get"}
    - {"calendar:emergency_new", "logout"}
)


@pytest.mark.parametrize("url_name", POST_ONLY)
def test_a_post_only_url_answers_a_get_with_405(client, world, url_name):
    w = world("operator")
    spec = next(s for s in ENDPOINTS.values() if s.url_name == url_name)
    target = _build(spec.target, w, w.own)
    client.force_login(w.user)
    before = _snapshot()

    response = client.get(_url(spec, target))

    assert response.status_code == 405
    assert _snapshot() == before


# --- every URL is in a matrix ----------------------------------------------------------------


def _all_url_names() -> set[str]:
    def walk(patterns, namespace: str | None):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    continue  # Django's own admin: staff only, audited by its base class
                ns = pattern.namespace
                inner = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
                yield from walk(pattern.url_patterns, inner)
            elif isinstance(pattern, URLPattern):
                name = pattern.name or str(pattern.pattern)
                yield f"{namespace}:{name}" if namespace and pattern.name else name

    return set(walk(get_resolver().url_patterns, None))


def _requested_in(module, names: list[str]) -> set[str]:
    """Names a matrix module requests in its tests rather than in a list it exposes."""
    source = inspect.getsource(module)
    missing = [n for n in names if f'"{n}"' not in source]
    assert not missing, f"{module.__name__} no longer requests {missing}"
    return set(names)


def covered_elsewhere() -> dict[str, set[str]]:
    from tests.api import test_permission_matrix as api_matrix
    from tests.changes import test_permission_matrix as changes_matrix
    from tests.changes import test_template_permissions as template_matrix
    from tests.compliance import test_permission_matrix as compliance_matrix
    from tests.dbops import test_configuration_permissions as configuration_matrix
    from tests.dbops import test_permissions as dbops_matrix
    from tests.maintenance import test_security_permissions as security_matrix

    return {
        api_matrix.__name__: {e.url_name for e in api_matrix.ENDPOINTS.values()},
        changes_matrix.__name__: {e.url_name for e in changes_matrix.ENDPOINTS.values()},
        template_matrix.__name__: {e.url_name for e in template_matrix.ENDPOINTS.values()},
        security_matrix.__name__: {e.url_name for e in security_matrix.ENDPOINTS.values()},
        dbops_matrix.__name__: {
            *dbops_matrix.GET_PAGES,
            *dbops_matrix.POST_PAGES,
            *_requested_in(dbops_matrix, ["dbops:targets", "dbops:create", "dbops:edit"]),
        },
        configuration_matrix.__name__: {
            *configuration_matrix.TARGET_GETS,
            *_requested_in(configuration_matrix, ["dbops:configuration_set"]),
        },
        # That matrix names paths; the URL each resolves to is what it covers.
        compliance_matrix.__name__: {
            resolve(e.path.format(obj=1)).view_name for e in compliance_matrix.ENDPOINTS.values()
        },
    }


def test_every_url_is_in_a_matrix():
    covered = {spec.url_name for spec in ENDPOINTS.values()}
    for names in covered_elsewhere().values():
        covered |= names

    uncovered = sorted(_all_url_names() - covered)
    stale = sorted(covered - _all_url_names())

    assert not uncovered, (
        "These URL names are in no permission matrix; add a row to tests/test_url_matrix.py "
        "(or to the app's matrix, exposing it): " + ", ".join(uncovered)
    )
    assert not stale, "Matrix rows name URLs that no longer exist: " + ", ".join(stale)


def test_the_matrix_covers_every_app():
    """The walk finds each app's URLs (a broken walk would pass the coverage test)."""
    names = _all_url_names()
    for prefix in ("portal:", "changes:", "maintenance:", "maintenance:security:", "calendar:",
                   "dbops:", "compliance:"):  # fmt: skip
        assert any(n.startswith(prefix) for n in names), prefix
    assert {"healthz", "login", "logout", "favicon.ico"} <= names
