"""The change register: every change the viewer may see, with the filters of /changes/."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from itertools import islice
from typing import Any

from django.conf import settings

from changes.forms import ChangeFilterForm
from changes.models import Approval, ChangeRequest
from changes.selectors import change_list
from compliance.exporters.base import Exporter, text
from maintenance.models import WindowType
from portal.redaction import redact

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


COLUMNS = (
    "pk",
    "title",
    "type",
    "priority",
    "category",
    "risk_level",
    "risk_score",
    "state",
    "outcome",
    "requester__username",
    "slot__window_id",
    "slot__window__type",
    "slot__window__start",
    "proposed_start",
    "created_at",
    "submitted_at",
    "decided_at",
    "executed_at",
    "closed_at",
)
WINDOW_TYPES = dict(WindowType.choices)


def _names(through, ids: list[int], field: str) -> dict[int, str]:
    """id -> "a, b" for one many-to-many relation of a chunk, in one query."""
    names: dict[int, list[str]] = defaultdict(list)
    rows = (
        through.objects.filter(changerequest_id__in=ids)
        .values_list("changerequest_id", f"{field}__name")
        .order_by(f"{field}__name")
    )
    for change_id, name in rows:
        names[change_id].append(name)
    return {k: ", ".join(v) for k, v in names.items()}


def _approvals(ids: list[int]) -> dict[int, str]:
    cells: dict[int, list[str]] = defaultdict(list)
    rows = (
        Approval.objects.filter(change_id__in=ids)
        .values_list("change_id", "role", "phase", "status", "decided_by__username", "decided_at")
        .order_by("change_id", "phase", "role")
    )
    for change_id, role, phase, status, who, when in rows:
        label = role if phase == Approval.Phase.PRE else f"{role} (retroactive)"
        if status == Approval.Status.PENDING:
            cells[change_id].append(f"{label}: pending")
        else:
            cells[change_id].append(f"{label}: {status.lower()} by {who or '?'} at {text(when)}")
    return {k: "; ".join(v) for k, v in cells.items()}


class ChangeRegisterExporter(Exporter):
    """Rows come from the change list's own selector (so its visibility and filters),
    read as plain values from a server-side cursor; each chunk's tenants, components,
    services and approvals are four queries, whatever the chunk's size."""

    identifier = "changes"
    verbose_name = "Change register"
    form_class = ChangeFilterForm
    # Titles pass through redaction; the other cells are the portal's own values.
    redacting = False

    def headers(self) -> list[str]:
        return HEADERS

    def count(self) -> int:
        return change_list(user=self.user, filters=self.params).count()

    def stem(self) -> str:
        return "change-register"

    def rows(self) -> Iterator[list[Any]]:
        qs = change_list(user=self.user, filters=self.params).prefetch_related(None)
        cursor = qs.values_list(*COLUMNS).iterator(chunk_size=settings.EXPORT_CHUNK_ROWS)
        through = ChangeRequest.tenants.through, ChangeRequest.components.through
        services = ChangeRequest.services.through
        while chunk := list(islice(cursor, settings.EXPORT_CHUNK_ROWS)):
            ids = [row[0] for row in chunk]
            tenants = _names(through[0], ids, "tenant")
            components = _names(through[1], ids, "component")
            service_names = _names(services, ids, "service")
            approvals = _approvals(ids)
            for row in chunk:
                values = dict(zip(COLUMNS, row, strict=True))
                pk = values["pk"]
                window = values["slot__window_id"]
                yield [
                    ChangeRequest.public_id_of(pk),
                    redact(values["title"]),
                    values["type"],
                    values["priority"],
                    values["category"],
                    values["risk_level"],
                    values["risk_score"],
                    values["state"],
                    values["outcome"],
                    tenants.get(pk, ""),
                    components.get(pk, ""),
                    service_names.get(pk, ""),
                    values["requester__username"],
                    approvals.get(pk, ""),
                    f"{WINDOW_TYPES.get(values['slot__window__type'], '')} window #{window}"
                    if window
                    else "",
                    values["slot__window__start"],
                    values["proposed_start"],
                    values["created_at"],
                    values["submitted_at"],
                    values["decided_at"],
                    values["executed_at"],
                    values["closed_at"],
                ]
