"""The audit trail as a file: every column of the chain, hashes included, oldest first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings

from compliance.exporters.base import Exporter
from compliance.forms import AuditFilterForm
from compliance.selectors import audit_events

HEADERS = [
    "Sequence",
    "When (UTC)",
    "User",
    "Role",
    "Acting for (user id)",
    "Action",
    "Object type",
    "Object id",
    "Outcome",
    "IP address",
    "Request id",
    "Details",
    "Previous hash",
    "Hash",
]


class AuditExporter(Exporter):
    identifier = "audit"
    verbose_name = "Audit trail"
    form_class = AuditFilterForm
    redacting = False

    def headers(self) -> list[str]:
        return HEADERS

    def count(self) -> int:
        return audit_events(self.params).count()

    def stem(self) -> str:
        return "audit-trail"

    def rows(self) -> Iterator[list[Any]]:
        events = audit_events(self.params).order_by("sequence")
        for e in events.iterator(chunk_size=settings.EXPORT_CHUNK_ROWS):
            yield [
                e.sequence,
                e.created_at,
                e.username,
                e.role,
                e.acting_for_id or "",
                e.action,
                e.object_type,
                e.object_id,
                e.outcome,
                e.ip_address or "",
                e.request_id,
                json.dumps(e.details, sort_keys=True, ensure_ascii=False),
                e.prev_hash,
                e.hash,
            ]
