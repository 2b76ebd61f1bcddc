"""Data for the drills, made in the database under test by the portal's own services.

Run inside the portal's environment (``Processes.python``), so it works on the embedded
SQLite default and on PostgreSQL alike; it prints one JSON object. Sessions are made
the way Django's test client logs in (``force_login``: the real login() and its
signals), since a thousand Argon2 sign-ins would take minutes of CPU before the drill.
"""

from __future__ import annotations

import uuid
from typing import Any

SECURITY_GROUP = "SECURITY"


def _session_for(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies["sessionid"].value


def _submitted_change(*, requester, tenant, component, title: str):
    from changes.services import change_submit
    from tests.factories import ChangeRequestFactory

    draft = ChangeRequestFactory(
        requester=requester,
        title=title,
        type="SECURITY",
        priority="MEDIUM",
        components=[component],
        tenants=[tenant],
    )
    return change_submit(change=draft, by=requester)


def decisions(*, approvals: int, clients: int) -> dict[str, Any]:
    """``approvals`` changes in review, each with a SECURITY approval, and ``clients``
    SECURITY approvers signed in (client i decides approval i % approvals)."""
    from changes.models import Approval
    from tests.factories import ComponentFactory, TenantFactory, UserFactory

    run = uuid.uuid4().hex[:6]
    tenant = TenantFactory(slug=f"drill-{run}", name=f"Drill {run}")
    component = ComponentFactory(name=f"drill-db-{run}")
    requester = UserFactory(username=f"req-{run}", roles=["REQUESTER"], tenants=[tenant])
    approval_ids = []
    for n in range(approvals):
        change = _submitted_change(
            requester=requester, tenant=tenant, component=component, title=f"Drill {run} #{n}"
        )
        approval = Approval.objects.get(change=change, role=SECURITY_GROUP, phase="PRE")
        approval_ids.append(approval.pk)
    sessions = []
    for n in range(clients):
        user = UserFactory(username=f"sec-{run}-{n}", roles=[SECURITY_GROUP], tenants=[tenant])
        sessions.append(_session_for(user))
    return {"approvals": approval_ids, "sessions": sessions}


def decided(*, approval_ids: list[int]) -> dict[str, Any]:
    """How each approval ended, and how many decisions the audit trail recorded on it."""
    from changes.models import Approval
    from portal.models import AuditEvent

    wanted = set(approval_ids)
    status = {str(a.pk): a.status for a in Approval.objects.filter(pk__in=wanted)}
    audited = dict.fromkeys(status, 0)
    for details in AuditEvent.objects.filter(
        action__in=["approval.approved", "approval.rejected"]
    ).values_list("details", flat=True):
        if details.get("approval") in wanted:
            audited[str(details["approval"])] += 1
    return {"status": status, "audited": audited}


def requesters(*, clients: int, approvers: int = 0) -> dict[str, Any]:
    """``clients`` signed-in requesters who may file changes on one tenant and component
    (and ``approvers`` SECURITY users who see it, so submitted changes notify someone)."""
    from tests.factories import ComponentFactory, TenantFactory, UserFactory

    run = uuid.uuid4().hex[:6]
    tenant = TenantFactory(slug=f"drill-{run}", name=f"Drill {run}")
    component = ComponentFactory(name=f"drill-db-{run}")
    sessions = []
    for n in range(clients):
        user = UserFactory(username=f"req-{run}-{n}", roles=["REQUESTER"], tenants=[tenant])
        sessions.append(_session_for(user))
    for n in range(approvers):
        UserFactory(username=f"sec-{run}-{n}", roles=[SECURITY_GROUP], tenants=[tenant])
    return {"sessions": sessions, "tenant": tenant.pk, "component": component.pk, "run": run}


def changes_titled(*, titles: list[str]) -> dict[str, int]:
    """How many changes carry each title (a committed write is there exactly once)."""
    from django.db.models import Count

    from changes.models import ChangeRequest

    rows = (
        ChangeRequest.objects.filter(title__in=titles)
        .values("title")
        .annotate(n=Count("id"))
        .values_list("title", "n")
    )
    return dict(rows)


def outbox_settled(*, since: str, timeout: float) -> dict[str, Any]:
    """Wait (up to ``timeout`` s) until every outbox row made since ``since`` is done;
    then the rows' state and the e-mail each notification since then should have sent."""
    import time
    from datetime import datetime

    from portal.models import Notification, OutboxMessage

    moment = datetime.fromisoformat(since)
    rows = OutboxMessage.objects.filter(created_at__gte=moment)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and rows.filter(done_at__isnull=True).exists():
        time.sleep(0.5)
    expected = [
        [n.recipient.email, f"[Change Portal] {n.subject}"]
        for n in Notification.objects.filter(created_at__gte=moment).select_related("recipient")
        if n.recipient.email
    ]
    return {
        "tasks": rows.count(),
        "undone": rows.filter(done_at__isnull=True).count(),
        "given_up": rows.filter(given_up_at__isnull=False).count(),
        "published_more_than_once": rows.filter(attempts__gt=1).count(),
        "failures": sum(rows.values_list("failures", flat=True)),
        "expected_mail": expected,
    }
