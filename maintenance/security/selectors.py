"""Reads for the security pages, and the one rule for who sees and does what there."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from changes.access import can_create
from maintenance.security.models import (
    Advisory,
    ComponentExecutor,
    Exposure,
    UpdateResult,
)
from portal.permissions import visible_tenants
from portal.roles import Role, has_role

VIEW_ROLES = (Role.SECURITY, Role.COMPLIANCE, Role.OPERATIONS)
MANAGE_ROLES = (Role.SECURITY, Role.OPERATIONS)
PAGE_SIZE = 50


def may_view(user) -> bool:
    """Patch compliance, advisories and the inventory: Security, Compliance, Operations."""
    return user.is_superuser or has_role(user, *VIEW_ROLES)


def may_manage(user) -> bool:
    """Importing advisories and refreshing the inventory: Security and Operations."""
    return user.is_superuser or has_role(user, *MANAGE_ROLES)


def may_propose(user) -> bool:
    """Proposing a security update files a change, so the person must be able to."""
    return may_manage(user) and can_create(user)


def visible_executors(user) -> QuerySet[ComponentExecutor]:
    """Components of a tenant the user may view, and shared ones (no tenant named)."""
    qs = ComponentExecutor.objects.all()
    if user.is_superuser or has_role(user, Role.COMPLIANCE):
        return qs
    tenant_ids = visible_tenants(user).values("pk")
    shared = ComponentExecutor.objects.filter(tenants__isnull=True).values("pk")
    mine = ComponentExecutor.tenants.through.objects.filter(tenant_id__in=tenant_ids).values(
        "componentexecutor_id"
    )
    return qs.filter(Q(pk__in=shared) | Q(pk__in=mine))


# --- patch compliance ---------------------------------------------------------------------


@dataclass
class Filters:
    severity: str = ""
    component: int | None = None
    ecosystem: str = ""
    q: str = ""
    min_days: int | None = None

    def as_query(self) -> dict[str, Any]:
        out = {
            "severity": self.severity,
            "component": self.component or "",
            "ecosystem": self.ecosystem,
            "q": self.q,
            "min_days": self.min_days if self.min_days is not None else "",
        }
        return {k: v for k, v in out.items() if v != ""}


def encode_cursor(row: Exposure) -> str:
    raw = json.dumps([row.severity_rank, row.exposed_since.isoformat(), row.pk])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[int, datetime, int] | None:
    """The position after which the next page starts; None for anything unreadable."""
    if not value or len(value) > 200:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        rank, since, pk = json.loads(raw)
        return int(rank), datetime.fromisoformat(since), int(pk)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        return None


def open_exposures(user, filters: Filters, *, now: datetime | None = None) -> QuerySet[Exposure]:
    now = now or timezone.now()
    qs = Exposure.objects.filter(
        resolved_at__isnull=True, executor__in=visible_executors(user)
    ).select_related("executor__component", "advisory")
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.component:
        qs = qs.filter(executor__component_id=filters.component)
    if filters.ecosystem:
        qs = qs.filter(ecosystem=filters.ecosystem)
    if filters.q:
        qs = qs.filter(
            Q(package__icontains=filters.q)
            | Q(advisory__osv_id__icontains=filters.q)
            | Q(advisory__aliases__icontains=filters.q)
        )
    if filters.min_days is not None:
        qs = qs.filter(exposed_since__lte=now - timedelta(days=filters.min_days))
    return qs.order_by("-severity_rank", "exposed_since", "pk")


@dataclass
class Page:
    rows: list[Exposure]
    next_cursor: str = ""
    summary: dict[str, int] = field(default_factory=dict)


def compliance_page(user, filters: Filters, *, after: str = "", size: int = PAGE_SIZE) -> Page:
    qs = open_exposures(user, filters)
    cursor = decode_cursor(after)
    if cursor is not None:
        rank, since, pk = cursor
        qs = qs.filter(
            Q(severity_rank__lt=rank)
            | Q(severity_rank=rank, exposed_since__gt=since)
            | Q(severity_rank=rank, exposed_since=since, pk__gt=pk)
        )
    rows = list(qs[: size + 1])
    page = Page(rows=rows[:size])
    if len(rows) > size:
        page.next_cursor = encode_cursor(rows[size - 1])
    return page


def severity_summary(user, filters: Filters) -> dict[str, int]:
    from django.db.models import Count

    counts = open_exposures(user, filters).order_by().values("severity").annotate(n=Count("pk"))
    return {row["severity"]: row["n"] for row in counts}


def days_exposed(row: Exposure, now: datetime | None = None) -> int:
    return max(0, ((now or timezone.now()) - row.exposed_since).days)


# --- components and advisories ---------------------------------------------------------------


def component_detail(executor: ComponentExecutor) -> dict[str, Any]:
    return {
        "executor": executor,
        "packages": list(executor.packages.order_by("ecosystem", "name")[:500]),
        "history": list(executor.history.order_by("-observed_at", "-pk")[:200]),
        "exposures": list(
            executor.exposures.filter(resolved_at__isnull=True)
            .select_related("advisory")
            .order_by("-severity_rank", "exposed_since")[:200]
        ),
        "results": list(
            UpdateResult.objects.filter(component_id=executor.component_id)
            .select_related("backup", "run")
            .order_by("-finished_at")[:50]
        ),
    }


def advisories() -> QuerySet[Advisory]:
    from django.db.models import Count

    return Advisory.objects.annotate(package_count=Count("packages")).order_by(
        "-imported_at", "-pk"
    )


def advisory_exposures(user, advisory: Advisory) -> list[Exposure]:
    return list(
        advisory.exposures.filter(executor__in=visible_executors(user))
        .select_related("executor__component")
        .order_by("resolved_at", "package")[:200]
    )
