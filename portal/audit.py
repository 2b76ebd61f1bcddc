"""The hash-chained audit trail (HIPAA 164.312(b) audit controls, (c) integrity).

Each row's hash is SHA-256 over the previous row's hash and the row's canonical
content, so changing, removing or reordering any row breaks every later link.
Appends are serialised (a transaction-scoped advisory lock on PostgreSQL, the
IMMEDIATE write lock on SQLite) so concurrent writers never fork the chain.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from portal import context
from portal.models import AuditEvent

GENESIS_HASH = "0" * 64
# An arbitrary, fixed key for pg_advisory_xact_lock: "audit" in ASCII.
_AUDIT_LOCK_KEY = 0x6175646974


def chain_ip(address: str | None) -> str | None:
    """The address as PostgreSQL's ``inet`` gives it back, since the hash is taken before
    the row is stored and verified from what is read: an IPv4-mapped client (a dual-stack
    listener) is its IPv4 address, an IPv4-compatible one ends in dotted form, a zone id
    (which ``inet`` refuses) is dropped. Python writes the rest the same way (RFC 5952)."""
    if not address:
        return None
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        value = int(parsed)  # without the zone id
        if value >> 32 == 0 and value >> 16 != 0:
            return f"::{ipaddress.IPv4Address(value)}"
        parsed = ipaddress.IPv6Address(value)
    return str(parsed)


def _as_jsonb_reads(number: str) -> int | float:
    """A JSON number as jsonb gives it back: exact, written out in full and never a
    negative zero (``1e+16`` reads back as the integer 10000000000000000, ``-0.0`` as
    ``0.0``), so the details hashed are the details verification reads."""
    value = Decimal(number)
    written = format(value, "f")
    return json.loads(written.lstrip("-") if value == 0 else written)


def _normalise(details: dict[str, Any] | None) -> dict[str, Any]:
    text = json.dumps(details or {}, default=str, sort_keys=True)
    return json.loads(text, parse_float=_as_jsonb_reads)


# The canonical content is ``json.dumps(payload, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False)`` of the row's fields. It is written out key by key here, in sorted
# order, with the encoder json.dumps itself uses for each value: the same text, without
# building a dict and sorting it for every row of a million-row verification.
_encode_str = json.encoder.encode_basestring  # json.dumps(ensure_ascii=False)'s own


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.

    ``JSONEncoder.encode`` builds its C encoder again on every call, which is two thirds
    of encoding a row's details; this builds it once, as ``encode`` would (without the
    circular-reference check: details are read from JSON, so they cannot be circular)."""
    encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    make = json.encoder.c_make_encoder
    if make is None:  # an interpreter without the C accelerator
        return encoder.encode
    chunks = make(None, encoder.default, _encode_str, None, ":", ",", True, False, True)
    return lambda value: "".join(chunks(value, 0))


_encode_json = _json_encoder()
_decode_json = json.JSONDecoder().decode  # json.loads of a str, without its type checks


def _value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    return _encode_json(value)


def _canonical(
    sequence, created: str | None, user_id, username, role, acting_for_id, ip_address,
    request_id, action, object_type, object_id, outcome, details,
) -> str:  # fmt: skip
    details_text = "{}" if details == {} else _encode_json(details)
    return (
        f'{{"acting_for_id":{_value(acting_for_id)},"action":{_value(action)},'
        f'"created_at":{_value(created)},"details":{details_text},'
        f'"ip_address":{_value(ip_address)},"object_id":{_value(object_id)},'
        f'"object_type":{_value(object_type)},"outcome":{_value(outcome)},'
        f'"request_id":{_value(request_id)},"role":{_value(role)},'
        f'"sequence":{_value(sequence)},"user_id":{_value(user_id)},'
        f'"username":{_value(username)}}}'
    )


def _created(created_at) -> str | None:
    return created_at.astimezone(UTC).isoformat(timespec="microseconds") if created_at else None


def canonical_content(event: AuditEvent) -> str:
    return _canonical(
        event.sequence,
        _created(event.created_at),
        event.user_id,
        event.username,
        event.role,
        event.acting_for_id,
        event.ip_address,
        event.request_id,
        event.action,
        event.object_type,
        event.object_id,
        event.outcome,
        event.details,
    )


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
            ip_address=chain_ip(ctx.ip_address),
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


# What verification reads of each row, in this order (the ORM path, and SQLite's).
_CHAIN_COLUMNS = (
    "id", "sequence", "created_at", "user_id", "username", "role", "acting_for_id",
    "ip_address", "request_id", "action", "object_type", "object_id", "outcome", "details",
    "prev_hash", "hash",
)  # fmt: skip
_BATCH = 5000

# On PostgreSQL the server writes each row's canonical content itself, around the
# details, which stay Python's to write (sort_keys over nested values): ``head``, then
# the details' jsonb text (NULL when empty), then ``tail``. ``to_json`` of a text is the
# string json.dumps(ensure_ascii=False) writes (the same escapes, the same lowercase
# \u00XX), ``abbrev`` is inet as it reads back, and the time is isoformat's. The server
# builds the text while Python hashes the rows before it, so the two cores share the
# work. ``tests/portal/test_audit_verification_streams.py`` holds it to _canonical.
_PG_CHAIN_QUERY = """
SELECT id, sequence, prev_hash, hash,
    '{"acting_for_id":' || coalesce(acting_for_id::text, 'null')
    || ',"action":' || coalesce(to_json(action)::text, 'null')
    || ',"created_at":' || coalesce('"' || to_char(created_at AT TIME ZONE 'UTC',
        'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') || '"', 'null')
    || ',"details":',
    CASE WHEN details = '{}'::jsonb THEN NULL ELSE details::text END,
    ',"ip_address":' || coalesce(to_json(abbrev(ip_address))::text, 'null')
    || ',"object_id":' || coalesce(to_json(object_id)::text, 'null')
    || ',"object_type":' || coalesce(to_json(object_type)::text, 'null')
    || ',"outcome":' || coalesce(to_json(outcome)::text, 'null')
    || ',"request_id":' || coalesce(to_json(request_id)::text, 'null')
    || ',"role":' || coalesce(to_json(role)::text, 'null')
    || ',"sequence":' || sequence::text
    || ',"user_id":' || coalesce(user_id::text, 'null')
    || ',"username":' || coalesce(to_json(username)::text, 'null') || '}'
FROM portal_auditevent ORDER BY sequence
"""


def _pg_contents(conn, *, stream: bool) -> Iterator[tuple[int, int, str, str, bytes]]:
    """The rows of ``_PG_CHAIN_QUERY`` with their content put together.

    ``stream``: one binary ``COPY`` of the query, the server streaming while Python
    hashes what arrived, psycopg parsing the rows in C (6 s for a million rows, against
    13 s from a server-side cursor, where the server waits for each FETCH and Python
    for each batch). A COPY left early is cancelled, which aborts its transaction, and
    holds the connection until it ends: so only on a connection of verification's own.
    Otherwise a server-side cursor, a batch at a time, which leaves the caller's
    transaction and connection usable between batches and after an early stop.

    The parts of the content the server writes arrive as UTF-8 bytes, as they are
    hashed: a text's binary form is its bytes, so the stream reads them as ``bytea`` and
    nothing is decoded only to be encoded again. The details arrive as text, which the
    JSON decoder reads faster than bytes."""
    decode, encode = _decode_json, _encode_json
    for pk, sequence, prev_hash, hash_, head, details, tail in _pg_rows(conn, stream=stream):
        body = b"{}" if details is None else encode(decode(details)).encode()
        yield pk, sequence, prev_hash, hash_, head + body + tail


def _pg_rows(conn, *, stream: bool) -> Iterator[tuple]:
    if stream:
        with conn.cursor() as cursor:
            query = f"COPY ({_PG_CHAIN_QUERY.strip()}) TO STDOUT (FORMAT BINARY)"
            with cursor.copy(query) as copy:
                copy.set_types(["int8", "int8", "text", "text", "bytea", "text", "bytea"])
                yield from copy.rows()
        return
    with conn.cursor(name="portal_audit_chain") as cursor:
        cursor.itersize = _BATCH
        cursor.execute(_PG_CHAIN_QUERY)
        while batch := cursor.fetchmany(_BATCH):
            for pk, sequence, prev_hash, hash_, head, details, tail in batch:
                yield pk, sequence, prev_hash, hash_, head.encode(), details, tail.encode()


def chain_contents() -> Iterator[tuple[int, int, str, str, bytes]]:
    """Every row as ``(id, sequence, prev_hash, hash, canonical content)``, in sequence
    order, never a model instance; the content as the UTF-8 bytes its hash is of.

    On PostgreSQL a batch or a block at a time (``_pg_contents``), so memory stays flat:
    inside the caller's transaction when there is one (it sees what that transaction
    sees), otherwise on a connection of its own in one read-only snapshot, so the
    caller's connection stays free to commit progress while the chain is read."""
    if connection.vendor != "postgresql":
        rows = AuditEvent.objects.order_by("sequence").values_list(*_CHAIN_COLUMNS)
        for row in rows.iterator(chunk_size=_BATCH):
            created = _created(row[2])
            content = _canonical(row[1], created, *row[3:14]).encode()
            yield row[0], row[1], row[14], row[15], content
        return
    if connection.in_atomic_block:
        connection.ensure_connection()
        yield from _pg_contents(connection.connection, stream=False)
        return
    import psycopg

    with psycopg.connect(**connection.get_connection_params()) as reader:
        reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        reader.read_only = True
        with reader.transaction():
            yield from _pg_contents(reader, stream=True)


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
    sha256 = hashlib.sha256
    for pk, sequence, stored_prev, stored_hash, content in chain_contents():
        checked += 1
        if progress is not None and checked % progress_every == 0:
            progress(checked)
        reason = ""
        if sequence != expected_sequence:
            reason = f"sequence {expected_sequence} is missing (found {sequence})"
        elif stored_prev != prev_hash:
            reason = "previous-hash link does not match the row before it"
        elif sha256(stored_prev.encode() + content).hexdigest() != stored_hash:
            reason = "content does not match its hash (row was altered)"
        if reason:
            breaks.append(ChainBreak(sequence=sequence, pk=pk, reason=reason))
            if first_only:
                break
        prev_hash = stored_hash
        expected_sequence = sequence + 1
    return ChainReport(checked=checked, head=prev_hash, breaks=breaks)


def chain_head() -> tuple[int, str]:
    last = AuditEvent.objects.order_by("-sequence").only("sequence", "hash").first()
    return (last.sequence, last.hash) if last else (0, GENESIS_HASH)
