"""The daily statistics snapshot: a beat task taking ids and calling one service."""

from __future__ import annotations

import pytest
from django.conf import settings

from dbops.models import QueryStatsSnapshot
from dbops.tasks import snapshot_statistics
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_beat_runs_the_snapshot_daily():
    entry = settings.CELERY_BEAT_SCHEDULE["dbops-snapshot-statistics"]

    assert entry["task"] == "dbops.snapshot_statistics"
    assert entry["schedule"].hour == {2}
    assert entry["schedule"].minute == {30}


def test_it_stores_statements_and_table_statistics(make_target, statements_db):
    statements_db.run(
        "CREATE TABLE visits (id int, clinic int)",
        "INSERT INTO visits SELECT i, i % 7 FROM generate_series(1, 1000) AS i",
    )
    with statements_db.connect() as conn:
        for clinic in (1, 2, 3):
            conn.execute("SELECT count(*) FROM visits WHERE clinic = %s", [clinic])
        conn.execute("SELECT pg_stat_force_next_flush()")
    target = make_target()

    ids = snapshot_statistics.apply(kwargs={"target_ids": [target.pk]}).get()

    snapshot = QueryStatsSnapshot.objects.get(pk__in=ids)
    assert snapshot.target == target
    assert snapshot.trigger == QueryStatsSnapshot.Trigger.SCHEDULED
    assert snapshot.statements_available is True
    assert snapshot.error == ""
    stat = snapshot.statements.get(query="SELECT count(*) FROM visits WHERE clinic = $1")
    assert stat.calls == 3
    assert stat.mean_exec_time == pytest.approx(stat.total_exec_time / 3)
    visits = snapshot.tables.get(schema="public", name="visits")
    assert visits.n_live_tup == 1000
    assert visits.seq_scan >= 3
    assert AuditEvent.objects.get(action="dbops.stats.snapshot").username == "celery-beat"


def test_without_ids_it_snapshots_every_active_target(make_target):
    active = make_target(name="active")
    make_target(name="retired", is_active=False)

    ids = snapshot_statistics.apply().get()

    assert list(QueryStatsSnapshot.objects.filter(pk__in=ids).values_list("target", flat=True)) == [
        active.pk
    ]


def test_an_unreachable_target_gets_a_snapshot_with_the_reason(make_target):
    target = make_target(port=1)

    [snapshot_id] = snapshot_statistics.apply(kwargs={"target_ids": [target.pk]}).get()

    snapshot = QueryStatsSnapshot.objects.get(pk=snapshot_id)
    assert "connection refused" in snapshot.error
    assert not snapshot.statements.exists()
    event = AuditEvent.objects.get(action="dbops.stats.snapshot")
    assert event.outcome == AuditEvent.Outcome.FAILURE
