"""Reads for the change pages; each returns what a page needs in a bounded number of
queries, whatever the number of rows."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import F, Prefetch, Q, QuerySet
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from changes import access
from changes.models import OPEN_STATES, Approval, ChangeRequest, State
from portal.models import AuditEvent

PAGE_SIZE = 25


def change_list(*, user, filters: dict[str, Any]) -> QuerySet[ChangeRequest]:
    qs = access.changes_visible_to(user)
    if filters.get("q"):
        term = filters["q"]
        digits = term.upper().removeprefix("CHG-").lstrip("0")
        cond = Q(title__icontains=term)
        if digits.isascii() and digits.isdecimal():
            cond |= Q(pk=int(digits))
        qs = qs.filter(cond)
    for key in ("state", "type", "priority", "category"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("tenant"):
        qs = qs.filter(tenants=filters["tenant"])
    if filters.get("requester"):
        qs = qs.filter(requester__username__iexact=filters["requester"])
    tz = timezone.get_current_timezone()
    if filters.get("start_from"):
        qs = qs.filter(proposed_start__gte=datetime.combine(filters["start_from"], time.min, tz))
    if filters.get("start_to"):
        qs = qs.filter(proposed_start__lte=datetime.combine(filters["start_to"], time.max, tz))
    return (
        qs.select_related("requester")
        .prefetch_related("tenants")
        .order_by("-created_at", "-pk")
        .distinct()
    )


def change_page(*, user, filters: dict[str, Any], page_number) -> Page:
    return Paginator(change_list(user=user, filters=filters), PAGE_SIZE).get_page(page_number)


def change_detail(*, pk: int) -> ChangeRequest:
    return (
        ChangeRequest.objects.select_related("requester", "copied_from")
        .prefetch_related(
            "components",
            "services",
            "tenants",
            Prefetch(
                "approvals",
                queryset=Approval.objects.select_related(
                    "decided_by", "delegated_to", "delegated_by"
                ),
            ),
            "corrective_actions__recorded_by",
            "corrective_actions__linked_change",
        )
        .get(pk=pk)
    )


def change_timeline(change: ChangeRequest, *, limit: int = 100) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            object_type="changes.changerequest", object_id=change.public_id
        ).order_by("sequence")[:limit]
    )


def approval_queue(user) -> QuerySet[Approval]:
    """Pending approvals this user may decide now. Ordered by due time, which puts the
    overdue ones first; approvals without a due time come last."""
    candidates = Approval.objects.filter(
        status=Approval.Status.PENDING,
        phase=Approval.Phase.PRE,
        change__state=State.IN_REVIEW,
    ) | Approval.objects.filter(
        status=Approval.Status.PENDING,
        phase=Approval.Phase.RETROACTIVE,
        change__state__in=[State.COMPLETED, State.FAILED, State.ROLLED_BACK],
    )
    if not user.is_superuser:
        candidates = get_objects_for_user(
            user, "changes.decide_approval", klass=candidates, accept_global_perms=False
        )
    visible = access.changes_visible_to(user).values("pk")
    decided_by_me = Approval.objects.filter(decided_by=user).values("change_id")
    return (
        candidates.filter(change__in=visible)
        .exclude(change__requester=user)
        .exclude(change__in=decided_by_me)
        .select_related("change", "change__requester")
        .order_by(F("due_at").asc(nulls_last=True), "pk")
    )


def approval_queue_page(user, *, page_number) -> Page:
    return Paginator(approval_queue(user), PAGE_SIZE * 2).get_page(page_number)


def my_open_changes(user, *, limit: int = 10) -> list[ChangeRequest]:
    return list(
        ChangeRequest.objects.filter(requester=user, state__in=OPEN_STATES).order_by("-updated_at")[
            :limit
        ]
    )


def approval_detail(*, pk: int) -> Approval | None:
    return (
        Approval.objects.select_related("change", "decided_by", "delegated_to", "delegated_by")
        .filter(pk=pk)
        .first()
    )


def retroactive_reviews_due(*, limit: int = 10) -> list[Approval]:
    """Ratifications still to be given for changes that ran, soonest due first."""
    return list(
        Approval.objects.filter(
            phase=Approval.Phase.RETROACTIVE,
            status=Approval.Status.PENDING,
            change__state__in=[State.COMPLETED, State.FAILED, State.ROLLED_BACK],
        )
        .select_related("change")
        .order_by(F("due_at").asc(nulls_last=True), "pk")[:limit]
    )


def refused_ratifications(*, limit: int = 10) -> list[ChangeRequest]:
    """Changes whose ratification was refused and that still wait for a corrective action."""
    return list(
        ChangeRequest.objects.filter(
            approvals__phase=Approval.Phase.RETROACTIVE,
            approvals__status=Approval.Status.REJECTED,
            corrective_actions__isnull=True,
        )
        .exclude(state=State.CLOSED)
        .distinct()
        .order_by("-executed_at", "-pk")[:limit]
    )
