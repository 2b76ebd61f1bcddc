"""Verification streams the chain as tuples from one binary COPY (issue 13), the
server writing each row's canonical content around its details, and the content it
hashes is, byte for byte, the JSON the chain has always hashed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from portal import context
from portal.audit import (
    _encode_json,
    audit_record,
    canonical_content,
    chain_contents,
    verify_chain,
)
from portal.models import AuditEvent


def reference_content(event) -> str:
    """The canonical content as it was first defined: one json.dumps of the fields."""
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


# Text as people and systems write it: accents, CJK, emoji, quotes, backslashes and
# control characters (a pasted tab or newline), never a lone surrogate (not UTF-8).
text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | text
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    sequence=st.integers(1, 2**62),
    created=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
    | st.none(),
    user_id=st.integers(1, 2**40) | st.none(),
    username=text,
    role=text,
    acting_for_id=st.integers(1, 2**40) | st.none(),
    ip_address=st.ip_addresses().map(str) | st.none(),
    request_id=text,
    action=text,
    object_type=text,
    object_id=text,
    outcome=st.sampled_from(list(AuditEvent.Outcome)),
    details=st.dictionaries(text, json_values, max_size=5),
)
def test_the_canonical_content_is_the_json_the_chain_always_hashed(**fields):
    event = SimpleNamespace(
        **{("created_at" if k == "created" else k): v for k, v in fields.items()}
    )
    assert canonical_content(event) == reference_content(event)


@pytest.mark.django_db
def test_a_recorded_event_hashes_the_same_as_before():
    event = audit_record(
        action="test.unicode",
        object_type="thing",
        object_id='Prüfung ✓ "quoted"\n',
        details={"b": [1, 2.5, None, True], "a": {"ü": "\t"}, "zz": "雪"},
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert canonical_content(stored) == reference_content(stored)
    assert verify_chain().intact


@pytest.mark.django_db
def test_inside_a_transaction_it_reads_what_the_transaction_sees():
    for n in range(7):
        audit_record(action="test.row", object_type="n", object_id=n)
    # The test runs in a transaction: the rows are not committed, yet they are checked.
    assert connection.in_atomic_block
    report = verify_chain()
    assert report.intact
    assert report.checked == AuditEvent.objects.count() >= 7
    rows = list(chain_contents())
    assert [r[1] for r in rows] == list(range(1, len(rows) + 1))
    assert all(isinstance(r, tuple) and isinstance(r[4], bytes) for r in rows)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_it_reads_on_its_own_connection_and_progress_commits():
    from django.db import connections

    for n in range(25):
        audit_record(action="test.row", object_type="n", object_id=n)
    seen: list[int] = []

    def progress(checked: int) -> None:
        # The caller's connection is free: a progress row written here is committed
        # while the chain is still being read.
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM portal_auditevent")
        seen.append(checked)

    assert not connection.in_atomic_block
    report = verify_chain(progress=progress, progress_every=10)
    total = AuditEvent.objects.count()
    assert report.intact and report.checked == total >= 25
    assert seen == list(range(10, total + 1, 10))
    connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_the_stream_and_the_cursor_give_the_same_contents():
    """Outside a transaction verification streams one COPY on its own connection;
    inside one it reads a server-side cursor: both give the content canonical_content writes."""
    from django.db import connections, transaction

    details = [{}, {"b": [1, 2.5, None], "a": 'é\u2028"q"'}, {"n": 10**16}, {"x": {"y": True}}]
    for n, detail in enumerate(details * 3):
        audit_record(action="test.row", object_type="n", object_id=n, details=detail)
    streamed = list(chain_contents())
    with transaction.atomic():
        fetched = list(chain_contents())
    assert streamed == fetched and len(streamed) == AuditEvent.objects.count() >= 12
    rows = AuditEvent.objects.order_by("sequence")
    assert [r[4].decode() for r in streamed] == [canonical_content(e) for e in rows]
    assert verify_chain().intact
    connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_a_verification_stopped_at_a_break_leaves_the_callers_connection_usable(
    behind_the_triggers,
):
    """The first break ends the read early: the stream's own connection is closed, and
    inside a caller's transaction the cursor leaves that transaction usable."""
    from django.db import connections, transaction

    for n in range(30):
        audit_record(action="test.chain", object_type="n", object_id=n)
    victim = AuditEvent.objects.get(action="test.chain", object_id="17")
    behind_the_triggers("UPDATE portal_auditevent SET object_id = 'x' WHERE id = %s", [victim.pk])
    # Megabytes of rows after it, so the read is still streaming when it stops (a small
    # chain arrives whole before the first row is checked).
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO portal_auditevent (sequence, created_at, username, role,
                   request_id, action, object_type, object_id, outcome, details,
                   prev_hash, hash)
               SELECT s, now(), 'filler', '', '', 'test.filler', 'n', s::text, 'SUCCESS',
                   jsonb_build_object('pad', repeat('x', 500)), repeat('0', 64),
                   lpad(to_hex(s), 64, '0')
               FROM generate_series((SELECT max(sequence) + 1 FROM portal_auditevent),
                   (SELECT max(sequence) + 20000 FROM portal_auditevent)) AS s"""
        )

    for _ in range(2):
        report = verify_chain()
        assert [b.pk for b in report.breaks] == [victim.pk]
        assert report.checked == victim.sequence
    with transaction.atomic():
        assert [b.pk for b in verify_chain().breaks] == [victim.pk]
        audit_record(action="test.after_break", object_type="n", object_id="after")
    assert AuditEvent.objects.filter(action="test.after_break").exists()
    connections.close_all()


@pytest.mark.django_db
def test_it_names_a_row_altered_behind_the_triggers_back_in_a_long_chain(behind_the_triggers):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(30):
        audit_record(action="test.chain", object_type="n", object_id=n, details={"n": n})
    victim = AuditEvent.objects.get(action="test.chain", object_id="17")
    behind_the_triggers(
        "UPDATE portal_auditevent SET created_at = %s WHERE id = %s",
        [start + timedelta(microseconds=1), victim.pk],
    )
    report = verify_chain(first_only=False)
    assert [b.sequence for b in report.breaks] == [victim.sequence]
    assert report.breaks[0].pk == victim.pk
    assert "altered" in report.breaks[0].reason


@pytest.mark.parametrize(
    ("client", "stored"),
    [
        ("::ffff:10.0.0.1", "10.0.0.1"),  # an IPv4 client of a dual-stack listener
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("::a00:1", "::10.0.0.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("10.1.2.3", "10.1.2.3"),
    ],
)
@pytest.mark.django_db
def test_a_client_address_is_recorded_as_the_database_gives_it_back(client, stored):
    """The hash is taken before the row is stored and checked against what is read back:
    an address ``inet`` writes differently would read as an altered row."""
    token = context.bind(context.RequestContext(ip_address=client))
    try:
        event = audit_record(action="test.address")
    finally:
        context.unbind(token)
    assert AuditEvent.objects.get(pk=event.pk).ip_address == stored
    assert verify_chain().intact


# What a service may record: no NUL (PostgreSQL's text and jsonb cannot hold one, and
# Django's form fields refuse it), within each column's length.
stored_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30
)
stored_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | stored_text
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(stored_text, children, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    username=stored_text,
    role=stored_text,
    object_type=stored_text,
    object_id=stored_text,
    outcome=st.sampled_from(list(AuditEvent.Outcome)),
    details=st.dictionaries(stored_text, stored_json, max_size=5),
    address=st.ip_addresses().map(str) | st.none(),
)
@pytest.mark.django_db
def test_whatever_a_service_records_verification_reads_as_intact(
    username, role, object_type, object_id, outcome, details, address
):
    """The content the server writes (on PostgreSQL) is the content Python hashed when
    the row was recorded: every escape, number, address and time, read back."""
    token = context.bind(context.RequestContext(ip_address=address))
    try:
        event = audit_record(
            action="test.any",
            username=username,
            role=role,
            object_type=object_type,
            object_id=object_id,
            outcome=outcome,
            details=details,
        )
    finally:
        context.unbind(token)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.details == event.details
    contents = {pk: content for pk, _, _, _, content in chain_contents()}
    assert contents[event.pk].decode() == canonical_content(stored) == reference_content(stored)
    assert verify_chain().intact


@pytest.mark.parametrize(
    ("recorded", "read_back"),
    [(1e16, 10000000000000000), (-0.0, 0.0), (1.5e-7, 1.5e-7), (2.0, 2.0), (1e300, 10**300)],
)
@pytest.mark.django_db
def test_a_number_is_hashed_as_the_database_gives_it_back(recorded, read_back):
    event = audit_record(action="test.number", details={"n": recorded})
    stored = AuditEvent.objects.get(pk=event.pk).details["n"]
    assert stored == read_back and type(stored) is type(read_back)
    assert str(stored) == str(read_back)
    assert verify_chain().intact


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_details_are_written_as_json_dumps_writes_them(value):
    """Verification builds the JSON encoder once rather than per row: the text is still
    json.dumps's, for every kind of value (NaN, -0.0, nested, any unicode)."""
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert _encode_json(value) == expected
