"""A portal with something on every main page, for the page-quality browser tests: a
change in review, a window a real worker ran (with its run and report), a database
target, and every role's user able to see the tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from changes.models import ChangeRequest, State
from changes.services import change_submit
from dbops.services import database_target_create
from maintenance.models import (
    MaintenanceExecution,
    MaintenanceWindow,
    ProcedureRun,
    ScheduledChange,
    WindowType,
)
from maintenance.services import window_start
from tests.factories import ChangeRequestFactory, ComponentFactory, ServiceFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    wait_until,
    with_procedure,
)


@dataclass
class World:
    in_review: ChangeRequest
    ran: ChangeRequest
    window: MaintenanceWindow
    run: ProcedureRun
    target: object

    def pages(self, role: str) -> list[tuple[str, str]]:
        """(name, path) of the main pages the role uses."""
        approval = self.in_review.approvals.get(role="SECURITY")
        common = [
            ("dashboard", reverse("portal:dashboard")),
            ("calendar", reverse("calendar:month")),
        ]
        return (
            common
            + {
                "requester": [
                    ("changes list", reverse("changes:list")),
                    ("change detail", self.in_review.get_absolute_url()),
                    ("new change form", reverse("changes:create")),
                    ("calendar week", reverse("calendar:week")),
                    ("preferences", reverse("portal:preferences")),
                ],
                "security": [
                    ("approvals queue", reverse("changes:approvals")),
                    ("approval page", approval.get_absolute_url()),
                    ("change detail", self.in_review.get_absolute_url()),
                    ("advisories", reverse("maintenance:security:advisories")),
                    ("patch compliance", reverse("maintenance:security:compliance")),
                ],
                "operator": [
                    ("changes list", reverse("changes:list")),
                    ("change detail (ran)", self.ran.get_absolute_url()),
                    ("window page", self.window.get_absolute_url()),
                    ("run page", reverse("maintenance:run", args=[self.run.pk])),
                    ("report", reverse("maintenance:report", args=[self.window.pk])),
                    ("database targets", reverse("dbops:targets")),
                    ("database target", self.target.get_absolute_url()),
                    ("notifications", reverse("portal:notifications")),
                    ("emergency window form", reverse("calendar:emergency_new")),
                ],
                "compliance": [
                    ("approvals queue", reverse("changes:approvals")),
                    ("audit trail", reverse("compliance:reports")),
                    ("KPIs", reverse("compliance:kpis")),
                    ("change detail", self.in_review.get_absolute_url()),
                ],
                "cto": [("changes list", reverse("changes:list"))],
            }[role]
        )


def build_world(*, requester, operator, superuser, tenant) -> World:
    """Call inside a test that has a ``celery_worker`` and scripts settings
    (``MAINTENANCE_SCRIPTS_DIR`` holding ``execution_helpers.SCRIPTS``)."""
    calm_calendar()
    claims = ServiceFactory(name="Claims API")
    api = ComponentFactory(name="claims-api", service=claims)
    in_review = ChangeRequestFactory(
        title="Rotate the claims API certificates",
        requester=requester,
        tenants=[tenant],
        components=[api],
        services=[claims],
        type="SECURITY",
        priority="MEDIUM",
    )
    in_review = change_submit(change=in_review, by=requester)

    ran = with_procedure(
        approved_change(requester, tenant, api, title="Rotate claims API logs", minutes=15),
        requester,
        "maintenance_script",
        script="succeed.sh",
        arguments="0",
        timeout_seconds="60",
        expect_output="all good",
    )
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() - timedelta(minutes=1),
        duration_minutes=240,
        notification_offsets=[60],
        title="Routine window (page checks)",
    )
    ChangeRequest.objects.filter(pk=ran.pk).update(state=State.SCHEDULED)
    ScheduledChange.objects.create(
        window=window,
        change=ran,
        position=1,
        planned_start=window.start,
        planned_minutes=15,
        scheduled_by=operator,
    )
    window_start(window=window, by=operator)
    wait_until(
        lambda: (
            MaintenanceExecution.objects.filter(
                window=window, status=MaintenanceExecution.Status.COMPLETED
            )
            .exclude(report="")
            .exists()
        ),
        timeout=90,
        what="the window's execution to complete and its report",
    )
    db = settings.DATABASES["default"]
    target = database_target_create(
        by=superuser,
        data={
            "name": "claims-db",
            "host": db.get("HOST") or "127.0.0.1",
            "port": int(db.get("PORT") or 5432),
            "database": db["NAME"],
            "user": db.get("USER") or "postgres",
            "sslmode": "disable",
        },
        password=db.get("PASSWORD") or "",
        tenants=[tenant],
    )
    return World(
        in_review=in_review,
        ran=ran,
        window=window,
        run=ProcedureRun.objects.get(change=ran),
        target=target,
    )
