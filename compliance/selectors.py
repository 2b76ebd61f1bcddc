"""Reads for the compliance pages: the audit trail (keyset pages), jobs, the signing key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, NamedTuple

from django.db.models import QuerySet
from django.utils import timezone

from compliance.models import ChainVerification, ExportJob
from portal.models import AuditEvent

AUDIT_PAGE_SIZE = 50


# What a page of the trail shows (``compliance/templatetags/audit_rows.py``): not the
# details, the previous hash or who acted for whom. Read as plain values: building 50
# model instances was a fifth of the page.
class AuditRow(NamedTuple):
    id: int
    sequence: int
    created_at: datetime
    username: str
    role: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    ip_address: str | None
    request_id: str
    hash: str


def _audit_rows(qs: QuerySet[AuditEvent]) -> list[AuditRow]:
    return [AuditRow._make(values) for values in qs.values_list(*AuditRow._fields)]


def audit_events(filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    """Events matching the audit filters (cleaned ``AuditFilterForm`` data), any order."""
    qs = AuditEvent.objects.all()
    tz = timezone.get_current_timezone()
    if filters.get("from"):
        qs = qs.filter(created_at__gte=datetime.combine(filters["from"], time.min, tz))
    if filters.get("to"):
        qs = qs.filter(created_at__lte=datetime.combine(filters["to"], time.max, tz))
    if filters.get("user"):
        qs = qs.filter(username__iexact=filters["user"])
    if filters.get("role"):
        qs = qs.filter(role=filters["role"])
    if filters.get("action"):
        qs = qs.filter(action__startswith=filters["action"])
    if filters.get("object"):
        object_type, object_id = filters["object"]
        qs = qs.filter(object_id=object_id)
        if object_type:
            qs = qs.filter(object_type=object_type)
    if filters.get("outcome"):
        qs = qs.filter(outcome=filters["outcome"])
    return qs


@dataclass(frozen=True)
class KeysetPage:
    events: list[AuditRow]
    older: int | None  # pass as ?before= for the next (older) page
    newer: int | None  # pass as ?after= for the previous (newer) page


def _cursor(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def audit_page(filters: dict[str, Any], *, before: str | None, after: str | None) -> KeysetPage:
    """Newest first, by sequence: one indexed range read per page however deep it is."""
    qs = audit_events(filters)
    size = AUDIT_PAGE_SIZE
    after_seq, before_seq = _cursor(after), _cursor(before)
    if after_seq is not None:
        rows = _audit_rows(qs.filter(sequence__gt=after_seq).order_by("sequence")[: size + 1])
        more_newer = len(rows) > size
        events = list(reversed(rows[:size]))
        older = (
            events[-1].sequence
            if events and qs.filter(sequence__lt=events[-1].sequence).exists()
            else None
        )
        return KeysetPage(events, older, events[0].sequence if more_newer else None)
    qs_page = qs.filter(sequence__lt=before_seq) if before_seq is not None else qs
    rows = _audit_rows(qs_page.order_by("-sequence")[: size + 1])
    events = rows[:size]
    older = events[-1].sequence if len(rows) > size else None
    newer = None
    if before_seq is not None and events and qs.filter(sequence__gt=events[0].sequence).exists():
        newer = events[0].sequence
    return KeysetPage(events, older, newer)


def my_export_jobs(user, *, limit: int = 10) -> list[ExportJob]:
    return list(ExportJob.objects.filter(requested_by=user)[:limit])


def latest_chain_verification() -> ChainVerification | None:
    return ChainVerification.objects.order_by("-created_at", "-pk").first()
