"""Fixtures and steps shared by the configuration and tuning tests (import the
``*_fixture`` functions into a test module to use the fixtures). Every target here is
a throwaway cluster (tests/services.py): ALTER SYSTEM and restarts never touch the
shared server."""

from __future__ import annotations

import os
import shlex
import shutil
import uuid

import pytest

from changes.models import ChangeRequest
from changes.services import approval_decide, change_submit
from maintenance import runner
from maintenance.models import ProcedureRun
from maintenance.services import execution_advance, window_start
from tests.maintenance.execution_helpers import (
    calm_calendar,
    schedule_all,
    wait_until,
    window_opening_soon,
)


@pytest.fixture(name="config_rules")
def config_rules_fixture(db):
    """The seeded CONFIG_VALIDATION rules (a transactional test's flush removes them)."""
    from django.apps import apps

    from dbops.configuration import defaults

    if defaults.missing(apps):
        defaults.seed(apps)


@pytest.fixture(name="approver")
def approver_fixture(make_user):
    """A second OPERATIONS user: the proposer never approves their own change."""
    return make_user("approver", ["OPERATIONS"])


def cluster_target(cluster, superuser, *, tenants=(), **fields):
    from dbops.services import database_target_create

    data = {
        "name": fields.pop("name", f"cluster-{uuid.uuid4().hex[:6]}"),
        "host": cluster.host,
        "port": cluster.port,
        "database": fields.pop("database", "postgres"),
        "user": cluster.user,
        "sslmode": "disable",
        **fields,
    }
    return database_target_create(by=superuser, data=data, password="", tenants=list(tenants))


def restart_command(cluster) -> str:
    """pg_ctl restart of the throwaway cluster, run as its owner when the tests run as
    root (PostgreSQL refuses root)."""
    args = [
        str(cluster.bindir / "pg_ctl"),
        "restart",
        "-D",
        str(cluster.data_dir),
        "-l",
        str(cluster.log_file),
        "-m",
        "fast",
        "-w",
        "-t",
        "60",
    ]
    if os.geteuid() == 0:
        # By its path: the command runs with the portal's short PATH, and a root shell's
        # own PATH may lack /usr/sbin too.
        runuser = shutil.which("runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
        assert runuser, "runuser (util-linux) is needed to restart a cluster as its owner"
        args = [runuser, "-u", cluster.user, "--", *args]
    return shlex.join(args)


def auto_conf(cluster) -> dict[str, str]:
    with cluster.connect() as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_file_settings "
            "WHERE sourcefile LIKE '%%postgresql.auto.conf' ORDER BY seqno"
        ).fetchall()
    return dict(rows)


def show(cluster, name: str) -> str:
    with cluster.connect() as conn:
        return conn.execute("SELECT current_setting(%s)", [name]).fetchone()[0]


def setting_row(cluster, name: str) -> tuple:
    with cluster.connect() as conn:
        return conn.execute(
            "SELECT setting, source, pending_restart FROM pg_settings WHERE name = %s", [name]
        ).fetchone()


def approve(change: ChangeRequest, *, by, approver) -> ChangeRequest:
    change = change_submit(change=ChangeRequest.objects.get(pk=change.pk), by=by)
    for approval in change.approvals.all():
        approval_decide(approval=approval, by=approver, decision="APPROVED")
    return ChangeRequest.objects.get(pk=change.pk)


def run_in_window(change: ChangeRequest, operator) -> list[ProcedureRun]:
    """Schedule the approved change into a window opening now, start it, and run its
    procedures in this thread with the framework's own runner (no broker)."""
    calm_calendar()
    window = window_opening_soon(seconds=1)
    schedule_all([change], window, operator)
    wait_until(lambda: window.is_open(), timeout=5, what="the window to open")
    execution = window_start(window=window, by=operator)
    runs = []
    for _ in range(5):
        execution_advance(execution_id=execution.pk)
        queued = ProcedureRun.objects.filter(change=change, status="QUEUED").order_by("pk")
        if not queued:
            break
        for run in queued:
            runner.execute_run(run_id=run.pk)
            runs.append(run.pk)
    execution_advance(execution_id=execution.pk)
    return list(ProcedureRun.objects.filter(pk__in=runs).order_by("pk"))
