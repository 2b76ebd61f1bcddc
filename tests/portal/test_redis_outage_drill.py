"""A Redis without persistence stops with tasks queued: every task still runs exactly once.

A private ``redis-server`` (no RDB, no AOF) is the broker; a real worker process
consumes from it and sends notification e-mails through Django's file-based backend,
so each e-mail is counted where it landed. The outbox relay (what beat runs) sends
again whatever the restarted, empty Redis forgot.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from django.db import connection, transaction

from portal.models import Notification, OutboxMessage
from portal.notifications import notify
from portal.outbox import outbox_relay
from tests.bench.drills import redis_outage
from tests.bench.drills.harness import (
    Processes,
    celery_broker,
    mail_sent,
    portal_env,
    start_runportal,
)

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("redis_outage")]
DEADLINE = 90.0


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def stack(transactional_db, private_redis, tmp_path) -> Iterator[Processes]:
    processes = Processes(
        portal_env(
            database_url=database_url(),
            broker_url=private_redis.url(0),
            var_dir=tmp_path,
            **redis_outage.DRILL_ENV,
        ),
        tmp_path,
    )
    try:
        with celery_broker(private_redis.url(0)):
            yield processes
    finally:
        processes.stop_all()


def notify_each(recipients, subject: str) -> float:
    """One notification (one e-mail task) per recipient; the slowest write's seconds."""
    slowest = 0.0
    for user in recipients:
        started = time.monotonic()
        with transaction.atomic(durable=True):
            notify(recipients=[user], subject=subject)
        slowest = max(slowest, time.monotonic() - started)
    return slowest


def relay_until_done(deadline: float = DEADLINE) -> float:
    """Run the relay as beat would until every row is done; seconds it took."""
    started = time.monotonic()
    while OutboxMessage.objects.filter(done_at__isnull=True).exists():
        if time.monotonic() - started > deadline:
            undone = OutboxMessage.objects.filter(done_at__isnull=True).count()
            pytest.fail(f"{undone} tasks still not done after {deadline:.0f} s")
        outbox_relay()
        time.sleep(0.5)
    return time.monotonic() - started


def test_tasks_a_restarted_redis_forgot_still_run_exactly_once(
    stack, private_redis, make_user, settings
):
    settings.OUTBOX_REDELIVER_SECONDS = 2
    people = [make_user(f"person{n}", ["REQUESTER"]) for n in range(30)]

    # Published while no worker consumes: the queue holds them when Redis stops.
    notify_each(people, "queued before the outage")
    assert OutboxMessage.objects.filter(published_at__isnull=False).count() == 30
    private_redis.stop()
    # Asked for while Redis is down: the writes commit at once, the rows wait.
    slowest_during_outage = notify_each(people, "asked for during the outage")
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 30
    private_redis.start()  # empty, as a Redis without persistence comes back
    # runportal, as deployed: the worker it supervises may die of the broker's
    # disappearance (kombu's restore of unacknowledged messages on a closed connection
    # raises, and Celery calls that unrecoverable) and is started again.
    start_runportal(stack)
    # While the worker consumes, Redis goes away again with whatever was still queued.
    notify_each(people, "queued while the worker ran")
    private_redis.stop()
    private_redis.start()

    try:
        settle_s = relay_until_done()
    except BaseException:
        print(stack.log("runportal", tail=30000))
        raise

    expected = Counter(
        (n.recipient.email, f"[Change Portal] {n.subject}")
        for n in Notification.objects.select_related("recipient")
    )
    sent = mail_sent(stack.var_dir / "mail")
    assert sum(expected.values()) == 90
    assert sent == expected, "some e-mails were lost or sent twice"
    rows = OutboxMessage.objects.all()
    assert rows.filter(done_at__isnull=True).count() == 0
    assert rows.filter(given_up_at__isnull=False).count() == 0
    # The first batch was published, lost with the queue, and published again.
    assert rows.filter(attempts__gte=2).count() >= 30
    assert slowest_during_outage < 1.0
    print(json.dumps({"settled_after_s": round(settle_s, 1), "emails": sum(sent.values())}))


def test_changes_submitted_through_the_web_while_redis_is_down_lose_no_task(stack, private_redis):
    seeded = redis_outage.seed(stack, clients=1)
    base_url = redis_outage.start_stack(stack)

    figures = redis_outage.drill(
        stack, private_redis, base_url, seeded, outage=4, before=2, after=2, settle_timeout=90
    )

    print(json.dumps(figures))
    assert redis_outage.check(figures) == []
