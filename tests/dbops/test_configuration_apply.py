"""A change set applied as one transaction of configuration on a throwaway cluster,
inside an approved, scheduled change in an open window: all of it, or none of it."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from changes.models import ChangeRequest, State
from dbops.configuration.models import ConfigurationChange, ConfigurationChangeSet
from dbops.configuration.services import configuration_set_propose
from maintenance.reports import render_pdf
from portal.models import AuditEvent
from tests.dbops.configuration_fixtures import (  # noqa: F401
    approve,
    approver_fixture,
    auto_conf,
    cluster_target,
    config_rules_fixture,
    restart_command,
    run_in_window,
    setting_row,
    show,
)

pytestmark = pytest.mark.django_db(transaction=True)

VALID = [
    ("work_mem", "16MB"),
    ("maintenance_work_mem", "256MB"),
    ("random_page_cost", "1.1"),
    ("log_min_duration_statement", "250ms"),
    ("checkpoint_completion_target", "0.8"),
    ("default_statistics_target", "200"),
    ("idle_in_transaction_session_timeout", "5min"),
    ("jit", "off"),
]


def _propose(target, operator, entries):
    change = configuration_set_propose(target=target, entries=entries, by=operator)
    return change, ConfigurationChangeSet.objects.get(change=change)


def test_a_valid_set_is_applied_and_show_returns_the_new_values(
    client,
    throwaway_cluster,
    superuser,
    operator,
    approver,
    tenant,
    config_rules,
):
    target = cluster_target(throwaway_cluster, superuser, tenants=[tenant])
    change, change_set = _propose(target, operator, VALID)
    assert change.type == "CONFIGURATION" and change.state == State.DRAFT
    assert [p.kind for p in change.procedures.all()] == ["db_configuration"]
    assert "ALTER SYSTEM SET \"work_mem\" = '16MB';" in change.implementation_plan

    change = approve(change, by=operator, approver=approver)
    assert change.state == State.APPROVED
    [run] = run_in_window(change, operator)

    assert run.status == "SUCCEEDED", run.error
    assert show(throwaway_cluster, "work_mem") == "16MB"
    assert show(throwaway_cluster, "maintenance_work_mem") == "256MB"
    assert show(throwaway_cluster, "random_page_cost") == "1.1"
    assert show(throwaway_cluster, "log_min_duration_statement") == "250ms"
    assert show(throwaway_cluster, "idle_in_transaction_session_timeout") == "5min"
    assert show(throwaway_cluster, "jit") == "off"
    assert auto_conf(throwaway_cluster)["work_mem"] == "16MB"
    steps = list(run.steps.order_by("position").values_list("name", "status"))
    assert [name for name, _ in steps] == [
        "Per-target lock",
        "Validate the set again",
        "Observe the server before",
        "Snapshot pg_settings and pg_file_settings",
        "ALTER SYSTEM each entry, reload, verify",
        "Each value through pg_settings",
        "Observe the server after",
    ]
    change_set.refresh_from_db()
    assert change_set.status == ConfigurationChangeSet.Status.APPLIED
    entry = change_set.entries.get(parameter="work_mem")
    assert (entry.current_value, entry.value_at_apply, entry.applied_value) == (
        "4MB",
        "4MB",
        "16MB",
    )
    assert entry.rollback_reset and entry.rollback_text == "RESET"
    assert ChangeRequest.objects.get(pk=change.pk).state == State.COMPLETED
    assert AuditEvent.objects.filter(action="dbops.configuration.applied").exists()

    client.force_login(operator)
    history = client.get(reverse("dbops:configuration_history", args=[target.pk]))
    assert change.public_id in history.content.decode() and "approver" in history.content.decode()
    detail = client.get(reverse("dbops:configuration_set", args=[change_set.pk])).content.decode()
    assert 'data-parameter="work_mem"' in detail and "16MB" in detail
    run_page = client.get(reverse("maintenance:run", args=[run.pk])).content.decode()
    assert 'data-testid="configuration-diff"' in run_page
    assert 'data-testid="before-after-chart"' in run_page and "<svg" in run_page
    pdf_name, pdf, _ = render_pdf(run.execution)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert pdf_name.endswith(".pdf") and "work_mem" in text and "Transactions per second" in text
    export = client.get(reverse("dbops:configuration_export", args=[target.pk]))
    text = b"".join(export.streaming_content).decode()
    assert export["Content-Disposition"].endswith('-nondefault.conf"')
    assert "work_mem = 16MB\t" in text and "random_page_cost = 1.1\t" in text


def test_a_set_whose_last_entry_fails_at_reload_leaves_everything_as_the_snapshot_had_it(
    pg_cluster_factory,
    superuser,
    operator,
    approver,
    tenant,
    config_rules,
):
    # statement_timeout is pinned on the command line, which beats postgresql.auto.conf:
    # ALTER SYSTEM takes the value, the reload does not put it in effect.
    cluster = pg_cluster_factory(command_line={"statement_timeout": "0"})
    with cluster.connect() as conn:
        conn.execute("ALTER SYSTEM SET work_mem = '6MB'")
        conn.execute("SELECT pg_reload_conf()")
    target = cluster_target(cluster, superuser, tenants=[tenant])
    before = {name: setting_row(cluster, name) for name in ("work_mem", "random_page_cost")}
    files_before = auto_conf(cluster)
    change, change_set = _propose(
        target,
        operator,
        [("work_mem", "32MB"), ("random_page_cost", "1.5"), ("statement_timeout", "30s")],
    )
    change = approve(change, by=operator, approver=approver)

    [run] = run_in_window(change, operator)

    assert run.status == "ROLLED_BACK"
    assert "statement_timeout" in run.error and "command line" in run.error
    assert {name: setting_row(cluster, name) for name in before} == before
    assert show(cluster, "work_mem") == "6MB"  # its old postgresql.auto.conf value, not RESET
    assert auto_conf(cluster) == files_before
    failed = run.steps.get(name="ALTER SYSTEM each entry, reload, verify")
    assert failed.status == "FAILED"
    assert failed.result["failed"] == "statement_timeout" and failed.result["restored"] is True
    assert "ALTER SYSTEM SET \"work_mem\" = '6MB'" in failed.output
    assert 'ALTER SYSTEM RESET "random_page_cost"' in failed.output
    assert run.steps.get(kind="ROLLBACK").status == "SUCCEEDED"
    change_set.refresh_from_db()
    assert change_set.status == ConfigurationChangeSet.Status.ROLLED_BACK
    assert set(change_set.entries.values_list("status", flat=True)) == {"ROLLED_BACK"}
    entry = change_set.entries.get(parameter="work_mem")
    assert not entry.rollback_reset and entry.rollback_value == "6MB"
    assert ChangeRequest.objects.get(pk=change.pk).state in (State.FAILED, State.ROLLED_BACK)


def test_a_postmaster_setting_waits_for_a_restart_on_a_target_the_portal_does_not_restart(
    client,
    throwaway_cluster,
    superuser,
    operator,
    approver,
    tenant,
    config_rules,
):
    target = cluster_target(throwaway_cluster, superuser, tenants=[tenant])
    client.force_login(operator)
    url = reverse("dbops:configuration_propose", args=[target.pk])
    rows = {"parameter": ["shared_buffers", "work_mem"], "value": ["1GB", "8MB"]}

    checked = client.post(url, {**rows, "action": "check"}).content.decode()
    assert 'data-testid="restart-required"' in checked
    assert "not restartable by the portal" in checked
    client.post(url, {**rows, "action": "propose"})
    change = ChangeRequest.objects.get()
    assert "Restart required for shared_buffers" in change.description
    assert "restart required (shared_buffers)" in change.procedures.get().summary
    change = approve(change, by=operator, approver=approver)

    [run] = run_in_window(change, operator)

    assert run.status == "SUCCEEDED", run.error
    assert not run.steps.filter(name__startswith="Restart").exists()
    assert setting_row(throwaway_cluster, "shared_buffers") == ("16384", "configuration file", True)
    assert show(throwaway_cluster, "work_mem") == "8MB"
    change_set = ConfigurationChangeSet.objects.get(change=change)
    assert change_set.restart_status == ConfigurationChangeSet.Restart.PENDING
    entry = change_set.entries.get(parameter="shared_buffers")
    assert entry.status == ConfigurationChange.Status.PENDING_RESTART
    health = client.get(reverse("dbops:target", args=[target.pk])).content.decode()
    assert 'data-testid="pending-row"' in health and "shared_buffers" in health


def test_a_postmaster_setting_on_a_restartable_target_is_verified_after_the_approved_restart(
    throwaway_cluster,
    superuser,
    operator,
    approver,
    tenant,
    config_rules,
):
    target = cluster_target(
        throwaway_cluster,
        superuser,
        tenants=[tenant],
        restartable=True,
        restart_command=restart_command(throwaway_cluster),
    )
    with throwaway_cluster.connect() as conn:
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    change, change_set = _propose(
        target, operator, [("max_connections", "150"), ("work_mem", "8MB")]
    )
    assert "the procedure restarts the server" in change.procedures.get().summary
    change = approve(change, by=operator, approver=approver)

    [run] = run_in_window(change, operator)

    assert run.status == "SUCCEEDED", run.error
    names = list(run.steps.order_by("position").values_list("name", flat=True))
    restart = names.index("Restart the server (approved with the change)")
    assert names.index("ALTER SYSTEM each entry, reload, verify") < restart
    assert names.index("Each value through pg_settings") > restart
    applied = run.steps.get(name="ALTER SYSTEM each entry, reload, verify").result
    assert applied["pending_restart"] == ["max_connections"]
    assert setting_row(throwaway_cluster, "max_connections") == (
        "150",
        "configuration file",
        False,
    )
    with throwaway_cluster.connect() as conn:
        assert conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] > started
    change_set.refresh_from_db()
    assert change_set.restart_status == ConfigurationChangeSet.Restart.DONE
    assert change_set.entries.get(parameter="max_connections").status == "APPLIED"
    assert AuditEvent.objects.filter(action="dbops.configuration.restarted").exists()


def test_a_set_refused_at_apply_changes_nothing(
    throwaway_cluster,
    superuser,
    operator,
    approver,
    tenant,
    config_rules,
):
    target = cluster_target(throwaway_cluster, superuser, tenants=[tenant])
    change, change_set = _propose(target, operator, [("work_mem", "64MB")])
    change = approve(change, by=operator, approver=approver)
    # Between approval and the window someone records the host's real, smaller RAM.
    target.memory_bytes = 1024**3
    target.save(update_fields=["memory_bytes"])

    [run] = run_in_window(change, operator)

    assert run.status == "FAILED"
    assert "TOTAL_MEMORY_LIMIT" in run.error
    assert not run.steps.filter(kind="STEP").exists()
    assert "work_mem" not in auto_conf(throwaway_cluster)
    change_set.refresh_from_db()
    assert any(not v["passed"] for v in change_set.apply_verdicts)
