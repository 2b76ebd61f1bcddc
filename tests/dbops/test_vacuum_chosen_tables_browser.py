"""Choosing tables for VACUUM in Chromium (issue 8, item 1): an operator adds VACUUM to
a change, picks the target (the page reloads with its tables), selects two of three
tables and adds it; once approved, scheduled and run by a real worker, exactly those
two tables were vacuumed.

Before the fix the view built the parameters with ``request.POST.items()``, which keeps
one value per field: the form answered "tables: Enter a list of values." for any choice.
A requester is offered no database target at all (item 2, as a person meets it).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from psycopg import sql

from changes.models import ChangeRequest, State
from changes.services import approval_decide, change_submit
from maintenance.models import ChangeProcedure, ProcedureRun
from maintenance.services import slot_create, window_start
from tests.factories import PASSWORD, ChangeRequestFactory
from tests.maintenance.execution_helpers import calm_calendar, wait_until, window_opening_soon

pytestmark = [pytest.mark.e2e, pytest.mark.worker]

TABLES = ("claims_2024", "claims_2025", "claims_archive")


def _bloated(target_db) -> None:
    with target_db.connect() as conn:
        for table in TABLES:
            name = sql.Identifier(table)
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id int PRIMARY KEY, status text) "
                    "WITH (autovacuum_enabled = false)"
                ).format(name)
            )
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT g, 'new' FROM generate_series(1, 5000) g").format(
                    name
                )
            )
            conn.execute(sql.SQL("DELETE FROM {} WHERE id % 2 = 0").format(name))
        conn.execute("SELECT pg_stat_force_next_flush()")


def _vacuum_counts(target_db) -> dict[str, int]:
    with target_db.connect() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute(
            "SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [list(TABLES)],
        ).fetchall()
    return dict(rows)


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My work")).to_be_visible()


def test_an_operator_vacuums_exactly_the_two_tables_chosen(
    page: Page,
    live_server,
    celery_worker,
    target_db,
    make_target,
    requester,
    operator,
    engineer,
    tenant,
):
    calm_calendar()
    _bloated(target_db)
    target = make_target(name="claims-db")
    change = ChangeRequestFactory(
        title="Reclaim space in the claims tables",
        type="PERFORMANCE",
        priority="LOW",
        requester=requester,
        tenants=[tenant],
        components=[target.component],
    )
    base = live_server.url
    _sign_in(page, base, "operator")

    page.goto(f"{base}{change.get_absolute_url()}")
    page.get_by_role("link", name="Add a procedure").click()
    page.get_by_label("Procedure").select_option(label="VACUUM")
    page.get_by_role("button", name="Choose").click()
    with page.expect_navigation():  # choosing the target reloads the form with its tables
        page.get_by_label("Database target").select_option(label="claims-db")
    tables = page.get_by_label("Tables", exact=True)
    expect(tables.locator("option")).to_have_count(3)
    tables.select_option(["public.claims_2024", "public.claims_2025"])
    page.get_by_role("button", name="Add procedure").click()

    expect(page.get_by_text("VACUUM added to")).to_be_visible()
    item = ChangeProcedure.objects.get(change=change)
    assert item.params["tables"] == [["public", "claims_2024"], ["public", "claims_2025"]]

    # Approve, schedule and run it: the requester submits, Engineering approves, an
    # operator who approved nothing schedules it in a window that opens now.
    change = change_submit(change=ChangeRequest.objects.get(pk=change.pk), by=requester)
    approval_decide(
        approval=change.approvals.get(role="ENGINEERING"),
        by=engineer,
        decision="APPROVED",
        comment="Two tables, plain VACUUM.",
    )
    assert ChangeRequest.objects.get(pk=change.pk).state == State.APPROVED
    window = window_opening_soon(seconds=1)
    slot_create(change=ChangeRequest.objects.get(pk=change.pk), window=window, by=operator)
    wait_until(window.is_open, timeout=10, what="the window to open")
    before = _vacuum_counts(target_db)
    window_start(window=window, by=operator)

    run = wait_until(
        lambda: (
            ProcedureRun.objects.filter(change=change, status__in=ProcedureRun.FINISHED)
            .exclude(status="SKIPPED")
            .first()
        ),
        timeout=90,
        what="the VACUUM run to finish",
    )
    assert run.status == ProcedureRun.Status.SUCCEEDED, run.error
    after = _vacuum_counts(target_db)
    assert after["claims_2024"] == before["claims_2024"] + 1
    assert after["claims_2025"] == before["claims_2025"] + 1
    assert after["claims_archive"] == before["claims_archive"] == 0
    assert run.result["done"] == ["public.claims_2024", "public.claims_2025"]


def test_a_requester_is_offered_no_database_target(
    page: Page, live_server, make_target, requester, tenant
):
    make_target(name="claims-db")
    change = ChangeRequestFactory(requester=requester, tenants=[tenant])
    _sign_in(page, live_server.url, "requester")

    page.goto(f"{live_server.url}{change.get_absolute_url()}")
    page.get_by_role("link", name="Add a procedure").click()
    page.get_by_label("Procedure").select_option(label="ANALYZE")
    page.get_by_role("button", name="Choose").click()

    options = page.get_by_label("Database target").locator("option")
    expect(options).to_have_count(1)  # only the empty choice
    expect(page.get_by_text("claims-db")).to_have_count(0)
