"""The health page, read from a real target database."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.urls import reverse

from dbops import stats
from dbops.connections import connect
from dbops.services import database_target_create

pytestmark = pytest.mark.django_db

HEALTH_QUERY_BOUND = 12


def _wait_for(predicate, *, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_it_shows_a_table_with_dead_tuples(client, operator, target, target_db):
    with target_db.connect() as conn:
        conn.execute(
            "CREATE TABLE churn (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false)"
        )
        conn.execute("INSERT INTO churn SELECT i, 'x' FROM generate_series(1, 5000) AS i")
        conn.execute("DELETE FROM churn WHERE id <= 3000")
        conn.execute("SELECT pg_stat_force_next_flush()")
    client.force_login(operator)

    response = client.get(reverse("dbops:target", args=[target.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    row = page[page.index("public.churn") :].split("</tr>")[0]
    assert "2,000" in row  # live
    assert "3,000" in row  # dead
    assert "60.0 %" in row  # dead ratio
    assert target_db.name in page
    assert "Transaction-id age" in page


def test_it_shows_a_blocked_query_and_its_blocker(client, operator, target, target_db):
    target_db.run("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
    target_db.run("INSERT INTO accounts VALUES (1, 100)")
    holder = target_db.connect(autocommit=False)
    holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
    blocker_pid = holder.info.backend_pid

    def blocked_reader():
        with target_db.connect() as conn:
            conn.execute("SELECT balance FROM accounts WHERE id = 1")

    thread = threading.Thread(target=blocked_reader)
    thread.start()
    try:
        with target_db.connect() as probe:
            _wait_for(
                lambda: probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                ).fetchone()[0]
            )
        client.force_login(operator)
        started = time.monotonic()

        response = client.get(reverse("dbops:target", args=[target.pk]))

        elapsed = time.monotonic() - started
        page = response.content.decode()
        blocked = page[page.index('data-testid="blocked"') :].split("</section>")[0]
        assert response.status_code == 200
        assert "SELECT balance FROM accounts WHERE id = 1" in blocked
        assert f'data-testid="blocker-pid">{blocker_pid}<' in blocked
        assert "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE" in blocked
        # The page does not queue behind the lock: the locked table's size is estimated.
        assert elapsed < 3
        assert "public.accounts" in page
        assert "(est.)" in page
    finally:
        holder.rollback()
        holder.close()
        thread.join(timeout=10)


def test_long_running_statements_are_listed_with_their_duration(target, target_db):
    def sleeper():
        with target_db.connect() as conn:
            conn.execute("SELECT pg_sleep(4)")

    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        with connect(target) as conn:
            rows = _wait_for(
                lambda: stats.health(conn, long_running_seconds=1).long_running.rows, timeout=5
            )
            quick = stats.health(conn).long_running.rows
    finally:
        thread.join(timeout=10)

    assert rows[0]["query"] == "SELECT pg_sleep(4)"
    assert rows[0]["duration"].total_seconds() >= 1
    assert quick == []  # none has run for a minute


def test_it_lists_invalid_unused_and_duplicate_indexes(client, operator, target, target_db):
    target_db.run(
        "CREATE TABLE items (id int PRIMARY KEY, sku text, shelf int)",
        "INSERT INTO items SELECT i, 'sku' || (i % 10), i FROM generate_series(1, 100) AS i",
        "CREATE INDEX items_shelf_idx ON items (shelf)",
        "CREATE INDEX items_shelf_again_idx ON items (shelf)",
        "CREATE INDEX items_shelf_sku_idx ON items (shelf, sku)",
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        target_db.run("CREATE UNIQUE INDEX CONCURRENTLY items_sku_key ON items (sku)")
    client.force_login(operator)

    response = client.get(reverse("dbops:target", args=[target.pk]))

    indexes = response.content.decode().split('data-testid="indexes"')[1]
    invalid, unused, duplicate = indexes.split("<h3>")[1:4]
    assert "public.items_sku_key" in invalid
    assert "public.items_shelf_idx" in unused
    assert "items_pkey" not in unused
    assert "public.items_shelf_again_idx</td><td>items_shelf_idx" in duplicate
    assert "public.items_shelf_idx</td><td>items_shelf_sku_idx" in duplicate
    assert "items_shelf_sku_idx</td><td>" not in duplicate.replace(
        "</td><td>items_shelf_sku_idx", ""
    )


def test_the_portals_own_database_can_be_registered(client, superuser, operator):
    db = settings.DATABASES["default"]
    own = database_target_create(
        by=superuser,
        data={
            "name": "portal-itself",
            "host": db["HOST"] or "127.0.0.1",
            "port": int(db["PORT"] or 5432),
            "database": db["NAME"],
            "user": db["USER"] or "postgres",
            "sslmode": "disable",
        },
        password=db.get("PASSWORD") or "",
        tenants=[],
    )
    client.force_login(operator)

    response = client.get(reverse("dbops:target", args=[own.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "public.dbops_databasetarget" in page
    assert 'data-testid="health-error"' not in page


@pytest.mark.parametrize("extra_tables", [1, 60])
def test_the_health_page_has_bounded_portal_queries(
    client, operator, target, target_db, extra_tables, django_assert_max_num_queries
):
    target_db.run(*(f"CREATE TABLE t{i} (id int)" for i in range(extra_tables)))
    client.force_login(operator)

    with django_assert_max_num_queries(HEALTH_QUERY_BOUND):
        response = client.get(reverse("dbops:target", args=[target.pk]))

    assert response.status_code == 200
    assert f"public.t{extra_tables - 1}" in response.content.decode()


@pytest.fixture
def monitoring_role(target_db):
    """A login role holding only pg_monitor, as dbops/README.md recommends."""
    role = f"mon_{target_db.name[-12:]}"
    target_db.run(f"CREATE ROLE {role} LOGIN", f"GRANT pg_monitor TO {role}")
    yield role
    target_db.run(f"DROP OWNED BY {role}", f"DROP ROLE {role}")


def test_the_pages_work_with_a_monitoring_role(
    client, operator, make_target, statements_db, monitoring_role
):
    statements_db.run(
        "CREATE TABLE visits (id int PRIMARY KEY, clinic int)",
        "CREATE INDEX visits_clinic_idx ON visits (clinic)",
    )
    target = make_target(user=monitoring_role)
    client.force_login(operator)

    health = client.get(reverse("dbops:target", args=[target.pk]))
    queries = client.get(reverse("dbops:queries", args=[target.pk]), {"threshold": "0"})
    client.post(reverse("dbops:check", args=[target.pk]))

    assert health.status_code == 200
    assert 'class="errors"' not in health.content.decode()
    assert "public.visits_clinic_idx" in health.content.decode()  # unused
    assert 'data-testid="top-statements"' in queries.content.decode()
    target.refresh_from_db()
    assert target.last_check["has_pg_monitor"] is True
    assert target.last_check["statements"]["state"] == "available"
    assert [m.split(" ")[0] for m in target.last_check["missing"]] == ["ownership"]


def test_a_role_that_may_not_read_pg_stat_statements_is_told_what_to_grant(
    client, operator, make_target, statements_db, monitoring_role
):
    statements_db.run(
        f"REVOKE pg_monitor FROM {monitoring_role}",
        "REVOKE SELECT ON pg_stat_statements FROM PUBLIC",
    )
    target = make_target(user=monitoring_role)
    client.force_login(operator)

    response = client.get(reverse("dbops:queries", args=[target.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "may not read it" in page
    assert f"GRANT pg_monitor TO {monitoring_role};" in page
    assert "CREATE EXTENSION" not in page
