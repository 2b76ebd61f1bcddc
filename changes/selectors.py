"""Reads for the change pages; each returns what a page needs in a bounded number of
queries, whatever the number of rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.db.models import (
    BooleanField,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.lookups import Exact
from django.utils import timezone

from changes import access
from changes.models import (
    EXECUTED_STATES,
    OPEN_STATES,
    Approval,
    ChangeRequest,
    CorrectiveAction,
    State,
    queue_due,
)
from changes.rows import LIST_VALUES, QUEUE_VALUES, ChangeRow, QueueRow
from portal.models import AuditEvent
from portal.roles import user_roles

PAGE_SIZE = 25


def _queue_rows(qs: QuerySet[Approval]) -> list[QueueRow]:
    return [QueueRow._make(values) for values in qs.values_list(*QUEUE_VALUES)]


def change_list(*, user, filters: dict[str, Any]) -> QuerySet[ChangeRequest]:
    """The changes this user may see matching the list's filters, newest first. Every
    condition is a column test or a semi-join on the change, so the query walks the
    ``(created_at, id)`` index in the list's order and stops at the page (no DISTINCT)."""
    qs = access.changes_visible_to(user)
    if filters.get("q"):
        term = filters["q"]
        cond = Q(title__icontains=term)
        if (pk := ChangeRequest.pk_of(term)) is not None:
            cond |= Q(pk=pk)
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


def _cursor_of(moment: datetime, pk: int) -> str:
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{pk}"


def _parse_cursor(raw: str | None) -> tuple[datetime, int] | None:
    """A cursor from a link (``<microseconds since 1970>-<id>``); anything else is
    ignored and the first page shown, as a damaged page link deserves."""
    micros, _, pk = (raw or "").strip().partition("-")
    if not (micros.isascii() and micros.isdigit() and pk.isascii() and pk.isdigit()):
        return None
    if len(micros) > 18 or len(pk) > 18:
        return None
    try:  # 18 digits reach the approval queue's NO_DUE_TIME, and past year 9999
        return _EPOCH + timedelta(microseconds=int(micros)), int(pk)
    except OverflowError:
        return None


def _below(column: str, at: datetime, pk: int) -> Q:
    # (column, id) < (at, pk), written so the index's first column bounds the scan.
    return Q(**{f"{column}__lte": at}) & (Q(**{f"{column}__lt": at}) | Q(pk__lt=pk))


def _above(column: str, at: datetime, pk: int) -> Q:
    return Q(**{f"{column}__gte": at}) & (Q(**{f"{column}__gt": at}) | Q(pk__gt=pk))


def _older_than(at: datetime, pk: int) -> Q:
    return _below("created_at", at, pk)


def _newer_than(at: datetime, pk: int) -> Q:
    return _above("created_at", at, pk)


class _Rows:
    """What the list templates read of a keyset page: its rows, iterated and counted."""

    rows: list

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def object_list(self) -> list:
        return self.rows


@dataclass
class ChangePage(_Rows):
    """One keyset page of the change list: ``before`` / ``after`` cursors for the links
    (``newer``, ``older``); ``oldest`` links to the last page, read from the other end."""

    rows: list[ChangeRow]
    newer: str | None
    older: str | None
    at_start: bool
    at_end: bool
    oldest: str = OLDEST

    @property
    def has_other_pages(self) -> bool:
        return not (self.at_start and self.at_end)


def _change_rows(qs: QuerySet[ChangeRequest]) -> list[ChangeRow]:
    """The rows with each change's ``tenant_names`` (by name), read in one more query of
    plain values: a ``prefetch_related("tenants")`` built a manager, a queryset and a
    tenant per link, two fifths of the page's reading."""
    values = list(qs.values_list(*LIST_VALUES))
    names: dict[int, list[str]] = {row[0]: [] for row in values}
    if names:
        links = (
            ChangeRequest.tenants.through.objects.filter(changerequest_id__in=names)
            .order_by("tenant__name", "tenant_id")
            .values_list("changerequest_id", "tenant__name")
        )
        for change_id, name in links:
            names[change_id].append(name)
    return [ChangeRow(*row, names[row[0]]) for row in values]


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
    qs = change_list(user=user, filters=filters)
    after_key, before_key = _parse_cursor(after), _parse_cursor(before)
    if after_key is not None:
        rows = _change_rows(
            qs.filter(_newer_than(*after_key)).order_by("created_at", "pk")[: size + 1]
        )
        more_newer = len(rows) > size
        changes = list(reversed(rows[:size]))
        # The last page ("Oldest", read from the beginning of time) has nothing older by
        # construction: no query to ask.
        at_end = (
            after_key == (_EPOCH, 0)
            or not changes
            or not qs.filter(_older_than(changes[-1].created_at, changes[-1].pk)).exists()
        )
        return ChangePage(
            changes,
            newer=_cursor_of(changes[0].created_at, changes[0].pk) if more_newer else None,
            older=None if at_end else _cursor_of(changes[-1].created_at, changes[-1].pk),
            at_start=not more_newer,
            at_end=at_end,
        )
    qs_page = qs.filter(_older_than(*before_key)) if before_key is not None else qs
    rows = _change_rows(qs_page[: size + 1])
    changes = rows[:size]
    at_end = len(rows) <= size
    at_start = (
        before_key is None
        or not changes
        or not qs.filter(_newer_than(changes[0].created_at, changes[0].pk)).exists()
    )
    return ChangePage(
        changes,
        newer=None if at_start else _cursor_of(changes[0].created_at, changes[0].pk),
        older=None if at_end else _cursor_of(changes[-1].created_at, changes[-1].pk),
        at_start=at_start,
        at_end=at_end,
    )


def _with_details(qs: QuerySet[ChangeRequest]) -> QuerySet[ChangeRequest]:
    return qs.select_related("requester", "copied_from").prefetch_related(
        "components",
        "services",
        "tenants",
        Prefetch(
            "approvals",
            queryset=Approval.objects.select_related("decided_by", "delegated_to", "delegated_by"),
        ),
        "corrective_actions__recorded_by",
        "corrective_actions__linked_change",
    )


def change_detail(*, pk: int) -> ChangeRequest:
    return _with_details(ChangeRequest.objects.all()).get(pk=pk)


def visible_change_detail(*, user, pk: int) -> ChangeRequest | None:
    """The change with its approvals and corrective actions, or None when the user may
    not see it: the visibility rule and the read in one query. Its components, services
    and tenants are ``impact_names`` (one query for the three); the change it was copied
    from is named by its id alone."""
    return (
        access.changes_visible_to(user)
        .filter(pk=pk)
        .select_related("requester")
        .prefetch_related(
            # The page names the decider and the delegate: two names rather than three
            # joined user rows (half the cost of reading the approvals).
            Prefetch(
                "approvals",
                queryset=Approval.objects.annotate(
                    decided_by_name=F("decided_by__username"),
                    delegated_to_name=F("delegated_to__username"),
                ),
            ),
            "corrective_actions__recorded_by",
            "corrective_actions__linked_change",
        )
        .first()
    )


@dataclass(frozen=True)
class ImpactNames:
    components: list[str]
    services: list[str]
    tenants: list[str]


def impact_names(change: ChangeRequest) -> ImpactNames:
    """The names of what the change touches, each kind in name order, in one query:
    prefetching the three links cost the change page three queries' worth of building."""
    parts = [
        getattr(ChangeRequest, kind)
        .through.objects.filter(changerequest_id=change.pk)
        .annotate(kind=Value(kind), name=F(f"{field}__name"))
        .values_list("kind", "name")
        for kind, field in (
            ("components", "component"),
            ("services", "service"),
            ("tenants", "tenant"),
        )
    ]
    names: dict[str, list[str]] = {"components": [], "services": [], "tenants": []}
    for kind, name in parts[0].union(*parts[1:], all=True).order_by("kind", "name"):
        names[kind].append(name)
    return ImpactNames(**names)


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
    role: ``access.sod_refusal``'s rule, as conditions on the row).

    Everything about the change is one correlated subquery, asked per approval as the
    queue's index yields them in order, so a page stops after its rows. As a join (or
    an EXISTS, which PostgreSQL turns into one), the planner, unable to estimate how
    many pending approvals survive the change's conditions, hashed every change in
    review and every tenant link before the first row (120 ms at 100,000 changes,
    against 1 ms)."""
    now = timezone.now()
    qs = Approval.objects.filter(status=Approval.Status.PENDING)
    if not user.is_superuser:
        qs = qs.filter(
            Q(role__in=sorted(user_roles(user)))
            | Q(delegated_to=user, delegation_expires_at__gt=now)
        )
    change = ChangeRequest.objects.filter(pk=OuterRef("change_id")).filter(
        Q(Exact(OuterRef("phase"), Approval.Phase.PRE), state=State.IN_REVIEW)
        | Q(Exact(OuterRef("phase"), Approval.Phase.RETROACTIVE), state__in=EXECUTED_STATES)
    )
    visible = access.change_visibility(user)
    if visible is not None:
        change = change.filter(visible)
    decided_by_me = Approval.objects.filter(change_id=OuterRef("pk"), decided_by=user)
    change = (
        change.exclude(requester=user)
        .exclude(started_by=user)
        .exclude(implemented_by=user)
        .exclude(verified_by=user)
        .filter(~Exists(decided_by_me))
    )
    decidable = Subquery(change.order_by().values(ok=Value(True))[:1], output_field=BooleanField())
    return (
        qs.filter(decidable)
        .annotate(due=queue_due())
        .select_related("change", "change__requester")
        .order_by("due", "pk")
    )


def _due_key(approval: Approval) -> tuple[datetime, int]:
    return approval.due, approval.pk


@dataclass
class QueuePage(_Rows):
    """One keyset page of the approval queue: ``previous`` / ``next`` cursors for the
    links (``before=``, ``after=``), None at either end. No count: counting the queue
    means deciding every approval in it, which is what a page avoids."""

    rows: list[QueueRow]
    previous: str | None
    next: str | None

    @property
    def has_other_pages(self) -> bool:
        return self.previous is not None or self.next is not None


def approval_queue_page(
    user, *, before: str | None = None, after: str | None = None, size: int = PAGE_SIZE * 2
) -> QueuePage:
    """A page of the queue in its order: the first, the page after ``after`` or the page
    before ``before``. A damaged cursor shows the first page."""
    qs = approval_queue(user)
    before_key, after_key = _parse_cursor(before), _parse_cursor(after)
    if before_key is not None:
        rows = _queue_rows(
            qs.filter(_below("due", *before_key)).order_by("-due", "-pk")[: size + 1]
        )
        approvals = list(reversed(rows[:size]))
        more_before = len(rows) > size
        more_after = bool(approvals) and qs.filter(_above("due", *_due_key(approvals[-1]))).exists()
    else:
        page = qs.filter(_above("due", *after_key)) if after_key is not None else qs
        rows = _queue_rows(page[: size + 1])
        approvals = rows[:size]
        more_after = len(rows) > size
        more_before = (
            after_key is not None
            and bool(approvals)
            and qs.filter(_below("due", *_due_key(approvals[0]))).exists()
        )
    return QueuePage(
        approvals,
        previous=_cursor_of(*_due_key(approvals[0])) if more_before else None,
        next=_cursor_of(*_due_key(approvals[-1])) if more_after else None,
    )


# What the dashboard's panels show of a change: its id (the pk), title, state, category.
PANEL_COLUMNS = ("title", "state", "category")


def my_open_changes(user, *, limit: int = 10) -> list[ChangeRequest]:
    return list(
        ChangeRequest.objects.filter(requester=user, state__in=OPEN_STATES)
        .only(*PANEL_COLUMNS)
        .order_by("-updated_at")[:limit]
    )


def approvals_waiting(user, *, limit: int = 10) -> list[QueueRow]:
    """The first of the user's queue (overdue first), as its rows show it."""
    return _queue_rows(approval_queue(user)[:limit])


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
        .only("role", "phase", "status", "due_at", "change__state", "change__title")
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
        .only(*PANEL_COLUMNS)
        .order_by("-executed_at", "-pk")[:limit]
    )
