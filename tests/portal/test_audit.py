"""The audit trail is append-only and hash-chained (HIPAA 164.312(b), (c))."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction

from portal.audit import GENESIS_HASH, audit_record, verify_chain
from portal.models import AuditEvent


@pytest.mark.django_db
def test_it_links_each_row_to_the_one_before():
    first = audit_record(action="test.first", object_type="thing", object_id="1")
    second = audit_record(action="test.second", object_type="thing", object_id="2")
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert second.sequence == first.sequence + 1
    assert verify_chain().intact


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_writers_leave_one_unbroken_chain():
    barrier = threading.Barrier(50)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            with transaction.atomic():
                audit_record(action="test.concurrent", object_type="writer", object_id=n)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    events = list(AuditEvent.objects.filter(action="test.concurrent"))
    assert len(events) == 50
    assert sorted(e.object_id for e in events) == sorted(str(n) for n in range(50))
    report = verify_chain()
    assert report.intact, report.breaks
    sequences = list(AuditEvent.objects.values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE portal_auditevent SET action = 'forged'",
        "DELETE FROM portal_auditevent",
        "TRUNCATE portal_auditevent",
    ],
)
def test_the_database_refuses_to_change_audit_rows(statement):
    audit_record(action="test.guarded")
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEvent.objects.filter(action="test.guarded").count() == 1


@pytest.mark.django_db
def test_the_orm_cannot_delete_or_update_audit_rows_either():
    event = audit_record(action="test.guarded")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(outcome="DENIED")
    with pytest.raises(DatabaseError), transaction.atomic():
        event.delete()


@pytest.mark.django_db
def test_verify_names_the_row_changed_behind_the_triggers_back(capsys, behind_the_triggers):
    for n in range(5):
        audit_record(action="test.chain", object_type="n", object_id=n)
    target = AuditEvent.objects.get(action="test.chain", object_id="2")
    behind_the_triggers(
        "UPDATE portal_auditevent SET details = '{\"forged\": true}' WHERE id = %s",
        [target.pk],
    )
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit_chain")
    assert f"sequence {target.sequence}" in str(excinfo.value)
    assert f"row id {target.pk}" in str(excinfo.value)


@pytest.mark.django_db
def test_verify_notices_a_deleted_row(behind_the_triggers):
    for n in range(4):
        audit_record(action="test.chain", object_type="n", object_id=n)
    victim = AuditEvent.objects.get(action="test.chain", object_id="1")
    behind_the_triggers("DELETE FROM portal_auditevent WHERE id = %s", [victim.pk])
    report = verify_chain()
    assert not report.intact
    assert report.breaks[0].sequence == victim.sequence + 1


@pytest.mark.django_db
def test_verify_command_passes_on_an_intact_chain(capsys):
    audit_record(action="test.ok")
    call_command("verify_audit_chain")
    assert "Audit chain intact" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_truncate_is_only_allowed_to_the_test_flush(settings):
    audit_record(action="test.truncate")
    settings.AUDIT_ALLOW_TEST_TRUNCATE = False
    # Without the flag even a flush is refused, so production's flush cannot wipe it.
    with pytest.raises(CommandError) as excinfo:
        call_command("flush", interactive=False, verbosity=0)
    assert "append-only" in str(excinfo.value.__cause__)
    assert AuditEvent.objects.filter(action="test.truncate").exists()
    settings.AUDIT_ALLOW_TEST_TRUNCATE = True
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEvent.objects.exists()
