"""Reads for the change pages; each returns what a page needs in a bounded number of
queries, whatever the number of rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cached_property
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from changes import access
from changes.models import (
    EXECUTED_STATES,
    OPEN_STATES,
    Approval,
    ChangeRequest,
    CorrectiveAction,
    State,
)
from portal.models import AuditEvent
from portal.roles import user_roles

PAGE_SIZE = 25
# The approval queue counts this far and then says "more than".
QUEUE_COUNT_CAP = 1000


def change_list(*, user, filters: dict[str, Any]) -> QuerySet[ChangeRequest]:
    """The changes this user may see matching the list's filters, newest first. Every
    condition is a column test or a semi-join on the change, so the query walks the
    ``(created_at, id)`` index in the list's order and stops at the page (no DISTINCT)."""
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
        qs = qs.filter(
            Exists(
                ChangeRequest.tenants.through.objects.filter(
                    changerequest_id=OuterRef("pk"), tenant=filters["tenant"]
                )
            )
        )
    if filters.get("requester"):
        qs = qs.filter(requester__username__iexact=filters["requester"])
    tz = timezone.get_current_timezone()
    if filters.get("start_from"):
        qs = qs.filter(proposed_start__gte=datetime.combine(filters["start_from"], time.min, tz))
    if filters.get("start_to"):
        qs = qs.filter(proposed_start__lte=datetime.combine(filters["start_to"], time.max, tz))
    return qs.select_related("requester").order_by("-created_at", "-pk")


# --- keyset pages of the change list ------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# "Oldest": the page after the beginning of time, read oldest first.
OLDEST = "0-0"


def _cursor_of(change: ChangeRequest) -> str:
    micros = (change.created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{change.pk}"


def _parse_cursor(raw: str | None) -> tuple[datetime, int] | None:
    """A cursor from a link (``<microseconds since 1970>-<id>``); anything else is
    ignored and the first page shown, as a damaged page link deserves."""
    micros, _, pk = (raw or "").strip().partition("-")
    if not (micros.isascii() and micros.isdigit() and pk.isascii() and pk.isdigit()):
        return None
    if len(micros) > 17 or len(pk) > 18:
        return None
    return _EPOCH + timedelta(microseconds=int(micros)), int(pk)


def _older_than(at: datetime, pk: int) -> Q:
    # (created_at, id) < (at, pk), written so the index's first column bounds the scan.
    return Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(pk__lt=pk))


def _newer_than(at: datetime, pk: int) -> Q:
    return Q(created_at__gte=at) & (Q(created_at__gt=at) | Q(pk__gt=pk))


@dataclass
class ChangePage:
    """One keyset page of the change list: ``before`` / ``after`` cursors for the links
    (``newer``, ``older``); ``oldest`` links to the last page, read from the other end."""

    changes: list[ChangeRequest]
    newer: str | None
    older: str | None
    at_start: bool
    at_end: bool
    oldest: str = OLDEST

    def __iter__(self):
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    @property
    def object_list(self) -> list[ChangeRequest]:
        return self.changes

    @property
    def has_other_pages(self) -> bool:
        return not (self.at_start and self.at_end)


def change_page(
    *,
    user,
    filters: dict[str, Any],
    before: str | None = None,
    after: str | None = None,
    size: int = PAGE_SIZE,
) -> ChangePage:
    """A page of the change list read from the index: newest first, older than
    ``before``, or the page just newer than ``after`` (``after=OLDEST``: the last page).
    One indexed range read plus one EXISTS per page, however deep it is."""
    qs = change_list(user=user, filters=filters).prefetch_related("tenants")
    after_key, before_key = _parse_cursor(after), _parse_cursor(before)
    if after_key is not None:
        rows = list(qs.filter(_newer_than(*after_key)).order_by("created_at", "pk")[: size + 1])
        more_newer = len(rows) > size
        changes = list(reversed(rows[:size]))
        at_end = (
            not changes
            or not qs.filter(_older_than(changes[-1].created_at, changes[-1].pk)).exists()
        )
        return ChangePage(
            changes,
            newer=_cursor_of(changes[0]) if more_newer else None,
            older=None if at_end else _cursor_of(changes[-1]),
            at_start=not more_newer,
            at_end=at_end,
        )
    qs_page = qs.filter(_older_than(*before_key)) if before_key is not None else qs
    rows = list(qs_page[: size + 1])
    changes = rows[:size]
    at_end = len(rows) <= size
    at_start = (
        before_key is None
        or not changes
        or not qs.filter(_newer_than(changes[0].created_at, changes[0].pk)).exists()
    )
    return ChangePage(
        changes,
        newer=None if at_start else _cursor_of(changes[0]),
        older=None if at_end else _cursor_of(changes[-1]),
        at_start=at_start,
        at_end=at_end,
    )


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
    """Pending approvals this user may decide now, overdue first (by due time; those
    without one last). The rule stated directly: an approval of one of the user's roles
    (whose group the review service granted the decide permission) or actively delegated
    to them, on a change they may see, that separation of duties leaves to them (not
    their own change, none they carried out, none they already decided under another
    role: ``access.sod_refusal``'s rule, as conditions on the row)."""
    now = timezone.now()
    qs = Approval.objects.filter(status=Approval.Status.PENDING).filter(
        Q(phase=Approval.Phase.PRE, change__state=State.IN_REVIEW)
        | Q(phase=Approval.Phase.RETROACTIVE, change__state__in=EXECUTED_STATES)
    )
    if not user.is_superuser:
        qs = qs.filter(
            Q(role__in=sorted(user_roles(user)))
            | Q(delegated_to=user, delegation_expires_at__gt=now)
        )
    visible = access.change_visibility(user, path="change__")
    if visible is not None:
        qs = qs.filter(visible)
    decided_by_me = Approval.objects.filter(change_id=OuterRef("change_id"), decided_by=user)
    return (
        qs.exclude(change__requester=user)
        .exclude(change__started_by=user)
        .exclude(change__implemented_by=user)
        .exclude(change__verified_by=user)
        .filter(~Exists(decided_by_me))
        .select_related("change", "change__requester")
        .order_by(F("due_at").asc(nulls_last=True), "pk")
    )


class CappedPaginator(Paginator):
    """Counts at most ``cap`` rows (a queue that can grow is never counted whole) and
    says "more than" beyond; pages stop at the cap."""

    def __init__(self, object_list, per_page, *, cap: int = QUEUE_COUNT_CAP) -> None:
        super().__init__(object_list, per_page)
        self.cap = cap

    @cached_property
    def _capped_count(self) -> int:
        return self.object_list[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self._capped_count > self.cap

    @cached_property
    def count(self) -> int:
        return min(self._capped_count, self.cap)


def approval_queue_page(user, *, page_number) -> Page:
    return CappedPaginator(approval_queue(user), PAGE_SIZE * 2).get_page(page_number)


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
    refused = Approval.objects.filter(
        change_id=OuterRef("pk"),
        phase=Approval.Phase.RETROACTIVE,
        status=Approval.Status.REJECTED,
    )
    corrected = CorrectiveAction.objects.filter(change_id=OuterRef("pk"))
    return list(
        ChangeRequest.objects.filter(Exists(refused))
        .filter(~Exists(corrected))
        .exclude(state=State.CLOSED)
        .order_by("-executed_at", "-pk")[:limit]
    )
