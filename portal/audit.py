"""The hash-chained audit trail (HIPAA 164.312(b) audit controls, (c) integrity).

Each row's hash is SHA-256 over the previous row's hash and the row's canonical
content, so changing, removing or reordering any row breaks every later link.
Appends are serialised (a transaction-scoped advisory lock on PostgreSQL, the
IMMEDIATE write lock on SQLite) so concurrent writers never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from portal import context
from portal.models import AuditEvent

GENESIS_HASH = "0" * 64
# An arbitrary, fixed key for pg_advisory_xact_lock: "audit" in ASCII.
_AUDIT_LOCK_KEY = 0x6175646974


def _normalise(details: dict[str, Any] | None) -> dict[str, Any]:
    return json.loads(json.dumps(details or {}, default=str, sort_keys=True))


def canonical_content(event: AuditEvent) -> str:
    created = event.created_at.astimezone(UTC) if event.created_at else None
    payload = {
        "sequence": event.sequence,
        "created_at": created.isoformat(timespec="microseconds") if created else None,
        "user_id": event.user_id,
        "username": event.username,
        "role": event.role,
        "acting_for_id": event.acting_for_id,
        "ip_address": event.ip_address,
        "request_id": event.request_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "outcome": event.outcome,
        "details": event.details,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + canonical_content(event)).encode("utf-8")).hexdigest()


def audit_record(
    *,
    action: str,
    user=None,
    role: str = "",
    acting_for=None,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    outcome: str = AuditEvent.Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
    username: str = "",
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or getattr(obj, "public_id", None) or obj.pk
    ctx = context.current()
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
        last = AuditEvent.objects.order_by("-sequence").only("sequence", "hash").first()
        event = AuditEvent(
            sequence=(last.sequence + 1) if last else 1,
            created_at=timezone.now(),
            user=user if authenticated else None,
            username=(user.get_username() if authenticated else username)[:150],
            role=role,
            acting_for=acting_for,
            ip_address=ctx.ip_address,
            request_id=ctx.request_id,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            outcome=outcome,
            details=_normalise(details),
            prev_hash=last.hash if last else GENESIS_HASH,
        )
        event.hash = compute_hash(event.prev_hash, event)
        event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class ChainBreak:
    sequence: int
    pk: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head: str
    breaks: list[ChainBreak]

    @property
    def intact(self) -> bool:
        return not self.breaks


def iter_chain() -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000)


def verify_chain(
    first_only: bool = True,
    *,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 2000,
) -> ChainReport:
    """``progress(checked)`` is called every ``progress_every`` rows (a task's progress bar)."""
    prev_hash = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    breaks: list[ChainBreak] = []
    for event in iter_chain():
        checked += 1
        if progress is not None and checked % progress_every == 0:
            progress(checked)
        reason = ""
        if event.sequence != expected_sequence:
            reason = f"sequence {expected_sequence} is missing (found {event.sequence})"
        elif event.prev_hash != prev_hash:
            reason = "previous-hash link does not match the row before it"
        elif compute_hash(event.prev_hash, event) != event.hash:
            reason = "content does not match its hash (row was altered)"
        if reason:
            breaks.append(ChainBreak(sequence=event.sequence, pk=event.pk, reason=reason))
            if first_only:
                break
        prev_hash = event.hash
        expected_sequence = event.sequence + 1
    return ChainReport(checked=checked, head=prev_hash, breaks=breaks)


def chain_head() -> tuple[int, str]:
    last = AuditEvent.objects.order_by("-sequence").only("sequence", "hash").first()
    return (last.sequence, last.hash) if last else (0, GENESIS_HASH)
