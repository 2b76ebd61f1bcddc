"""The outbox knows whether a task ran, not only whether the broker took it.

A worker claims the delivery's row (task id = row id) and marks it done; the relay sends
again what was published but not done; duplicates are skipped; failures are counted,
retried after a back-off and given up at the limit.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from celery.signals import task_postrun
from django.db import transaction
from django.utils import timezone

from portal.celery import app
from portal.models import AuditEvent, OutboxMessage
from portal.notifications import notify
from portal.outbox import (
    _send,
    outbox_backlog,
    outbox_claim,
    outbox_enqueue,
    outbox_mark_done,
    outbox_mark_failed,
    outbox_relay,
)

DEADLINE = 20.0


def wait_for(probe: Callable[[], Any], *, what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s")


@app.task(name="tests.outbox_always_fails", acks_late=True)
def always_fails(token: str) -> None:
    raise RuntimeError(f"the mail relay refused {token}")


class Deliveries:
    """What the in-process worker did with each delivery (from Celery's own signal)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.states: list[tuple[str, str]] = []

    def __call__(self, sender=None, task_id=None, state=None, **kwargs) -> None:
        with self._lock:
            self.states.append((str(task_id), str(state)))

    def of(self, task_id) -> list[str]:
        with self._lock:
            return [state for tid, state in self.states if tid == str(task_id)]


@pytest.fixture
def deliveries():
    seen = Deliveries()
    task_postrun.connect(seen, weak=False)
    yield seen
    task_postrun.disconnect(seen)


def pings(token: str) -> int:
    return AuditEvent.objects.filter(action="worker.ping", object_id=token).count()


# --- the worker marks the row -------------------------------------------------------------


@pytest.mark.worker
def test_a_task_that_ran_marks_its_row_done(celery_worker):
    token = uuid.uuid4().hex
    with transaction.atomic(durable=True):
        message = outbox_enqueue(task_name="portal.worker_ping", args=[token])

    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).done_at, what="the row done")

    message.refresh_from_db()
    assert pings(token) == 1
    assert message.started_at is not None
    assert message.published_at <= message.started_at <= message.done_at
    assert message.due_at is None
    assert message.failures == 0
    assert outbox_backlog() == {"undone": 0, "oldest_undone_age_seconds": None, "given_up": 0}


@pytest.mark.worker
def test_a_second_copy_of_a_task_that_ran_is_skipped(celery_worker, deliveries):
    token = uuid.uuid4().hex
    with transaction.atomic(durable=True):
        message = outbox_enqueue(task_name="portal.worker_ping", args=[token])
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).done_at, what="the first run")

    _send(OutboxMessage.objects.get(pk=message.pk))  # the broker hands it out again

    wait_for(lambda: len(deliveries.of(message.pk)) == 2, what="the second delivery")
    assert deliveries.of(message.pk) == ["SUCCESS", "IGNORED"]
    assert pings(token) == 1


@pytest.mark.worker
def test_two_copies_waiting_in_the_queue_run_the_task_once(celery_worker, deliveries):
    token = uuid.uuid4().hex
    message = OutboxMessage.objects.create(task_name="portal.worker_ping", args=[token])
    _send(message)
    _send(message)

    wait_for(lambda: len(deliveries.of(message.pk)) == 2, what="both deliveries")
    assert sorted(deliveries.of(message.pk)) == ["IGNORED", "SUCCESS"]
    assert pings(token) == 1
    assert OutboxMessage.objects.get(pk=message.pk).done_at is not None


@pytest.mark.worker
def test_a_task_sent_without_an_outbox_row_still_runs(celery_worker):
    token = uuid.uuid4().hex

    app.send_task("portal.worker_ping", args=[token])

    wait_for(lambda: pings(token) == 1, what="the untracked ping")
    assert not OutboxMessage.objects.exists()


# --- the relay sends again what the broker lost ---------------------------------------------


@pytest.mark.django_db
def test_the_relay_leaves_a_published_row_alone_until_the_redelivery_timeout(settings):
    settings.OUTBOX_REDELIVER_SECONDS = 300
    message = OutboxMessage.objects.create(task_name="portal.worker_ping", args=["t"])
    assert outbox_relay() == 1
    app.control.purge()  # the broker loses it

    assert outbox_relay() == 0
    OutboxMessage.objects.filter(pk=message.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    assert outbox_relay() == 1

    message.refresh_from_db()
    assert message.attempts == 2
    assert message.due_at > timezone.now() + timedelta(seconds=290)
    app.control.purge()


@pytest.mark.worker
def test_a_task_the_broker_lost_is_sent_again_and_runs_once(settings, celery_worker):
    settings.OUTBOX_REDELIVER_SECONDS = 300
    token = uuid.uuid4().hex
    message = OutboxMessage.objects.create(task_name="portal.worker_ping", args=[token])
    # Published, then forgotten by the broker before any worker took it: the row stays
    # published and not done, which is what the relay looks for after the timeout.
    OutboxMessage.objects.filter(pk=message.pk).update(
        published_at=timezone.now() - timedelta(seconds=301),
        attempts=1,
        due_at=timezone.now() - timedelta(seconds=1),
    )

    assert outbox_relay() == 1

    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).done_at, what="the resent run")
    assert pings(token) == 1
    assert OutboxMessage.objects.get(pk=message.pk).attempts == 2


@pytest.mark.django_db
def test_the_relay_never_sends_a_done_or_given_up_row_again():
    now = timezone.now()
    OutboxMessage.objects.create(task_name="portal.worker_ping", done_at=now, due_at=None)
    OutboxMessage.objects.create(task_name="portal.worker_ping", given_up_at=now, due_at=None)

    assert outbox_relay() == 0


@pytest.mark.django_db
def test_a_row_claimed_by_a_running_worker_is_not_sent_again_within_its_lease():
    message = OutboxMessage.objects.create(task_name="portal.worker_ping", args=["t"])
    assert outbox_claim(task_id=str(message.pk), lease_seconds=600) is True

    assert outbox_relay() == 0
    assert outbox_claim(task_id=str(message.pk), lease_seconds=600) is False

    # The worker that held it vanished: once the lease is over, it is sent again.
    OutboxMessage.objects.filter(pk=message.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    assert outbox_relay() == 1
    assert outbox_claim(task_id=str(message.pk), lease_seconds=600) is True
    app.control.purge()


@pytest.mark.django_db
def test_a_claim_for_a_task_id_without_a_row_is_untracked():
    assert outbox_claim(task_id=str(uuid.uuid4()), lease_seconds=60) is None
    assert outbox_claim(task_id="not-a-uuid", lease_seconds=60) is None


# --- failures: counted, retried after a back-off, given up at the limit -----------------


@pytest.mark.worker
def test_a_task_that_raised_is_not_done_and_is_retried_until_given_up(
    settings, celery_worker, deliveries
):
    settings.OUTBOX_REDELIVER_SECONDS = 60
    settings.OUTBOX_MAX_FAILURES = 2
    with transaction.atomic(durable=True):
        message = outbox_enqueue(task_name="tests.outbox_always_fails", args=["MSG-1"])

    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).failures == 1, what="a failure")
    message.refresh_from_db()
    assert message.done_at is None
    assert message.given_up_at is None
    assert message.started_at is None
    assert message.last_error == "RuntimeError: the mail relay refused MSG-1"
    assert timedelta(seconds=55) < message.due_at - timezone.now() <= timedelta(seconds=60)
    assert outbox_relay() == 0  # not before the back-off

    OutboxMessage.objects.filter(pk=message.pk).update(due_at=timezone.now())
    assert outbox_relay() == 1
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).given_up_at, what="given up")

    message.refresh_from_db()
    assert message.failures == 2
    assert message.due_at is None
    assert message.done_at is None
    assert deliveries.of(message.pk) == ["FAILURE", "FAILURE"]
    assert outbox_relay() == 0
    assert outbox_backlog()["given_up"] == 1


@pytest.mark.django_db
def test_the_retry_back_off_doubles_up_to_an_hour(settings):
    settings.OUTBOX_REDELIVER_SECONDS = 600
    settings.OUTBOX_MAX_FAILURES = 10
    message = OutboxMessage.objects.create(task_name="portal.send_email")
    outbox_claim(task_id=str(message.pk), lease_seconds=60)
    delays = []
    for _ in range(5):
        before = timezone.now()
        outbox_mark_failed(task_id=str(message.pk), error=OSError("smtp down"))
        message.refresh_from_db()
        delays.append(round((message.due_at - before).total_seconds() / 60))

    assert delays == [10, 20, 40, 60, 60]
    assert message.failures == 5
    assert message.last_error == "OSError: smtp down"


@pytest.mark.django_db
def test_a_done_row_is_not_counted_as_failed_by_a_late_failure_report():
    message = OutboxMessage.objects.create(task_name="portal.send_email")
    outbox_mark_done(task_id=str(message.pk))

    outbox_mark_failed(task_id=str(message.pk), error=OSError("late"))

    message.refresh_from_db()
    assert message.failures == 0
    assert message.done_at is not None


# --- /healthz shows the oldest task not done yet ------------------------------------------


@pytest.mark.django_db
def test_healthz_shows_the_oldest_undone_tasks_age(client, settings):
    settings.OUTBOX_STALE_SECONDS = 900
    with transaction.atomic():
        notify(recipients=[], subject="nobody")  # nothing queued for nobody
    old = OutboxMessage.objects.create(task_name="portal.send_email", due_at=None)
    OutboxMessage.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(seconds=120), published_at=timezone.now()
    )
    OutboxMessage.objects.create(task_name="portal.send_email")
    OutboxMessage.objects.create(task_name="portal.send_email", done_at=timezone.now())

    report = client.get("/healthz").json()

    assert report["outbox"]["ok"] is True
    assert report["outbox"]["undone"] == 2
    assert 120 <= report["outbox"]["oldest_undone_age_seconds"] < 130
    assert report["outbox"]["given_up"] == 0


@pytest.mark.django_db
def test_healthz_is_degraded_while_a_task_waits_longer_than_the_stale_limit(client, settings):
    settings.OUTBOX_STALE_SECONDS = 60
    message = OutboxMessage.objects.create(task_name="portal.send_email")
    OutboxMessage.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(seconds=61)
    )

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["outbox"]["ok"] is False
