"""The change register: every change the viewer may see, with the filters of /changes/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet

from changes.forms import ChangeFilterForm
from changes.models import Approval, ChangeRequest
from changes.selectors import change_list
from compliance.exporters.base import Exporter, text

HEADERS = [
    "ID",
    "Title",
    "Type",
    "Priority",
    "Category",
    "Risk level",
    "Risk score",
    "State",
    "Outcome",
    "Tenants",
    "Components",
    "Services",
    "Requester",
    "Approvals (role: decision by whom at when)",
    "Window",
    "Window start (UTC)",
    "Proposed start (UTC)",
    "Created (UTC)",
    "Submitted (UTC)",
    "Decided (UTC)",
    "Executed (UTC)",
    "Closed (UTC)",
]


def register_queryset(*, user, filters: dict[str, Any]) -> QuerySet[ChangeRequest]:
    """The page's own selector (so visibility is the page's), with what the rows name."""
    return (
        change_list(user=user, filters=filters)
        .select_related("requester", "slot__window")
        .prefetch_related(
            "components",
            "services",
            Prefetch(
                "approvals",
                queryset=Approval.objects.select_related("decided_by").order_by("phase", "role"),
            ),
        )
    )


def approvals_cell(change: ChangeRequest) -> str:
    parts = []
    for a in change.approvals.all():
        role = a.role if a.phase == Approval.Phase.PRE else f"{a.role} (retroactive)"
        if a.status == Approval.Status.PENDING:
            parts.append(f"{role}: pending")
        else:
            who = a.decided_by.get_username() if a.decided_by else "?"
            parts.append(f"{role}: {a.status.lower()} by {who} at {text(a.decided_at)}")
    return "; ".join(parts)


def window_cells(change: ChangeRequest) -> tuple[str, Any]:
    slot = getattr(change, "slot", None)
    if slot is None:
        return "", None
    window = slot.window
    return f"{window.get_type_display()} window #{window.pk}", window.start


class ChangeRegisterExporter(Exporter):
    identifier = "changes"
    verbose_name = "Change register"
    form_class = ChangeFilterForm

    def queryset(self) -> QuerySet[ChangeRequest]:
        return register_queryset(user=self.user, filters=self.params)

    def headers(self) -> list[str]:
        return HEADERS

    def count(self) -> int:
        return change_list(user=self.user, filters=self.params).count()

    def stem(self) -> str:
        return "change-register"

    def rows(self) -> Iterator[list[Any]]:
        for c in self.queryset().iterator(chunk_size=settings.EXPORT_CHUNK_ROWS):
            window, window_start = window_cells(c)
            yield [
                c.public_id,
                c.title,
                c.type,
                c.priority,
                c.category,
                c.risk_level,
                c.risk_score,
                c.state,
                c.outcome,
                ", ".join(t.name for t in c.tenants.all()),
                ", ".join(x.name for x in c.components.all()),
                ", ".join(s.name for s in c.services.all()),
                c.requester.get_username(),
                approvals_cell(c),
                window,
                window_start,
                c.proposed_start,
                c.created_at,
                c.submitted_at,
                c.decided_at,
                c.executed_at,
                c.closed_at,
            ]
