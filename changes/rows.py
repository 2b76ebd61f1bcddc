"""What the list pages show of a change or an approval, as plain values: the rows the
change list, the approval queue and the dashboard read (``changes.selectors``) and the
row tags write (``changes/templatetags/change_rows.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from changes.models import Approval, ChangeRequest

# What a list row shows (``changes/templatetags/change_rows.py``), as plain values: not
# the description and plans (up to 20,000 characters each) nor the requester's whole
# row, and no model instances (two a row, a quarter of the page's reading).
LIST_VALUES = (
    "pk",
    "title",
    "type",
    "priority",
    "category",
    "state",
    "proposed_start",
    "created_at",
    "requester__username",
)


class ChangeRow(NamedTuple):
    """A change as the list's rows show it (``LIST_VALUES`` in order, then its tenants'
    names)."""

    pk: int
    title: str
    type: str
    priority: str
    category: str
    state: str
    proposed_start: datetime
    created_at: datetime
    requester: str
    tenant_names: list[str]

    @property
    def public_id(self) -> str:
        return ChangeRequest.public_id_of(self.pk)


# What a queue row shows (``approval_rows``, the dashboard's panel), as plain values: a
# row built as three model instances (the approval, its change, the requester) took a
# third of the queue page's query.
QUEUE_VALUES = (
    "pk",
    "role",
    "phase",
    "status",
    "due_at",
    "due",
    "change_id",
    "change__title",
    "change__category",
    "change__risk_level",
    "change__risk_score",
    "change__requester__username",
)


class QueueRow(NamedTuple):
    """An approval of the queue as its rows show it (``QUEUE_VALUES``, in order)."""

    pk: int
    role: str
    phase: str
    status: str
    due_at: datetime | None
    due: datetime
    change_id: int
    title: str
    category: str
    risk_level: str
    risk_score: int
    requester: str

    @property
    def public_id(self) -> str:
        return ChangeRequest.public_id_of(self.change_id)

    @property
    def is_overdue(self) -> bool:
        return Approval.overdue(self.status, self.due_at)
