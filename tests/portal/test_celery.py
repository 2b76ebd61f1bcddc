"""Tasks reach a real worker through the outbox; a dead broker never blocks a write."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.celery import app
from portal.heartbeat import beat_once
from portal.models import AuditEvent, Notification, OutboxMessage, WorkerHeartbeat
from portal.notifications import notify
from portal.outbox import outbox_enqueue, outbox_relay

TASK_DEADLINE = 20.0


def wait_for(probe: Callable[[], Any], *, timeout: float = TASK_DEADLINE, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _forget_broker_pools() -> None:
    # The app keeps one connection pool and one producer pool for the broker URL it
    # first published to; dropping them makes the next publish use the current URL.
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Point the Celery app (publishers, health check and workers) at another broker."""
    saved_env = os.environ.get("CELERY_BROKER_URL")
    saved_conf = app.conf.broker_url
    saved_setting = settings.CELERY_BROKER_URL
    # Celery reads the environment variable before its configuration.
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    settings.CELERY_BROKER_URL = url
    _forget_broker_pools()
    try:
        yield
    finally:
        if app._pool is not None:
            app._pool.force_close_all()
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env
        app.conf.broker_url = saved_conf
        settings.CELERY_BROKER_URL = saved_setting
        _forget_broker_pools()


@contextmanager
def redis_server(port: int) -> Iterator[None]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is required for the broker-outage test: apt-get install redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:

        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_for(answers, timeout=10, what=f"redis-server on port {port} answering")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def worker_on_current_broker() -> Iterator[None]:
    app.loader.import_default_modules()
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=20.0,
    ):
        yield


# --- a real worker on the real broker ---------------------------------------------


@pytest.mark.worker
def test_a_task_enqueued_in_a_transaction_is_run_by_the_worker(celery_worker):
    token = uuid.uuid4().hex

    with transaction.atomic(durable=True):
        message = outbox_enqueue(task_name="portal.worker_ping", args=[token])

    event = wait_for(
        lambda: AuditEvent.objects.filter(action="worker.ping", object_id=token).first(),
        what="the worker.ping audit row",
    )
    assert event.details == {"token": token}
    message.refresh_from_db()
    assert message.published_at is not None
    assert message.attempts == 1


@pytest.mark.worker
def test_a_rolled_back_transaction_sends_no_task(celery_worker):
    lost, kept = uuid.uuid4().hex, uuid.uuid4().hex

    with pytest.raises(RuntimeError):
        with transaction.atomic(durable=True):
            outbox_enqueue(task_name="portal.worker_ping", args=[lost])
            raise RuntimeError("the write fails after asking for the task")
    with transaction.atomic(durable=True):
        outbox_enqueue(task_name="portal.worker_ping", args=[kept])

    wait_for(
        lambda: AuditEvent.objects.filter(action="worker.ping", object_id=kept).exists(),
        what="the committed ping",
    )
    assert not AuditEvent.objects.filter(action="worker.ping", object_id=lost).exists()
    assert OutboxMessage.objects.count() == 1


# --- the broker is down: writes still commit at once, the relay catches up ------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_write_commits_at_once_while_the_broker_is_down_and_its_task_runs_later(
    make_user, mailoutbox
):
    recipient = make_user("riley", ["REQUESTER"])
    port = free_port()  # nothing listens here until redis_server() starts
    with broker_at(f"redis://127.0.0.1:{port}/0"):
        started = time.monotonic()
        with transaction.atomic(durable=True):
            notify(recipients=[recipient], subject="Window MW-7 opens at 22:00 UTC")
        elapsed = time.monotonic() - started

        assert elapsed < 5, f"the write waited {elapsed:.1f} s for a dead broker"
        assert Notification.objects.filter(recipient=recipient).count() == 1
        message = OutboxMessage.objects.get()
        assert message.task_name == "portal.send_notification_email"
        assert message.published_at is None
        assert message.attempts == 1
        assert "Connection refused" in message.last_error
        assert mailoutbox == []

        with redis_server(port):
            assert outbox_relay() == 1
            with worker_on_current_broker():
                wait_for(lambda: len(mailoutbox) == 1, what="the notification e-mail")

    assert mailoutbox[0].subject == "[Change Portal] Window MW-7 opens at 22:00 UTC"
    assert mailoutbox[0].to == ["riley@portal.example"]
    message.refresh_from_db()
    assert message.published_at is not None
    assert message.attempts == 2
    assert message.last_error == ""
    assert outbox_relay() == 0


@pytest.mark.django_db
def test_the_relay_stops_at_the_first_failure_while_the_broker_is_down():
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"):
        with transaction.atomic():
            for n in range(3):
                OutboxMessage.objects.create(task_name="portal.worker_ping", args=[f"t{n}"])
        started = time.monotonic()
        sent = outbox_relay()
        elapsed = time.monotonic() - started

    assert sent == 0
    assert elapsed < 5
    assert list(OutboxMessage.objects.values_list("attempts", flat=True)) == [1, 0, 0]
    assert not OutboxMessage.objects.filter(published_at__isnull=False).exists()


# --- /healthz ------------------------------------------------------------------------


def test_health_is_ok_with_database_broker_and_a_fresh_worker_heartbeat(client, db):
    beat_once("celery@portal-worker-1")

    response = client.get("/healthz")

    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert report["database"] == {"ok": True, "vendor": "postgresql"}
    assert report["broker"]["ok"] is True
    assert report["worker"]["ok"] is True
    assert report["worker"]["hostname"] == "celery@portal-worker-1"
    assert response["Cache-Control"].startswith("max-age=0")


def test_health_is_degraded_when_the_worker_heartbeat_is_stale(client, db):
    stale = timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_SECONDS + 5)
    with time_machine.travel(timezone.now() - stale):
        beat_once("celery@portal-worker-1")

    response = client.get("/healthz")

    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "degraded"
    assert report["worker"]["ok"] is False
    assert report["worker"]["age_seconds"] >= settings.WORKER_HEARTBEAT_STALE_SECONDS
    assert report["database"]["ok"] is True
    assert report["broker"]["ok"] is True


def test_health_is_degraded_when_no_worker_ever_beat(client, db):
    assert not WorkerHeartbeat.objects.exists()

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["worker"] == {"ok": False, "error": "no worker heartbeat yet"}


def test_health_is_degraded_fast_when_the_broker_is_unreachable(client, db):
    beat_once("celery@portal-worker-1")
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"):
        started = time.monotonic()
        response = client.get("/healthz")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
    assert elapsed < 5
