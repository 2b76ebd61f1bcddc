"""Redaction: a secret a script prints never reaches the database, an export or a page."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from maintenance.models import MaintenanceExecution, ProcedureRun, StepRun
from maintenance.services import window_start
from portal.redaction import redact, redact_data
from tests.compliance.conftest import csv_rows
from tests.factories import ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    schedule_all,
    wait_until,
    window_opening_soon,
    with_procedure,
)

SECRETS = [
    "hunter2-very-secret",
    "s3cr3t-in-url",
    "123-45-6789",
    "00482913",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "287-65-4321",
]
LEAKY = (
    "#!/bin/sh\n"
    'echo "connecting with PGPASSWORD=hunter2-very-secret"\n'
    'echo "dsn postgres://app:s3cr3t-in-url@db.internal:5432/claims"\n'
    'echo "patient SSN 123-45-6789 and MRN: 00482913 migrated"\n'
    'echo "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789"\n'
    # Printed in two pieces across a flush, as a slow script would: still redacted whole.
    'printf "second SSN 287-65-"; sleep 2; printf "4321 done\\n"\n'
    'echo "all good"\n'
)


@pytest.mark.parametrize(
    "text, kept, gone",
    [
        ("PGPASSWORD=hunter2 psql -h db", "PGPASSWORD=[REDACTED:password] psql -h db", "hunter2"),
        (
            "postgresql://app:pw123@db:5432/x",
            "postgresql://app:[REDACTED:connection-string]@db",
            "pw123",
        ),
        ('{"api_key": "abc123xyz"}', '"api_key": [REDACTED:password]', "abc123xyz"),
        ("Authorization: Bearer abcdefghijklmnop", "Bearer [REDACTED:bearer-token]", "abcdefghij"),
        ("SSN 123-45-6789 on file", "SSN [REDACTED:ssn] on file", "123-45-6789"),
        ("MRN# 1234567 admitted", "MRN# [REDACTED:mrn] admitted", "1234567"),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----",
            "[REDACTED:private-key]",
            "MIIB",
        ),
    ],
)
def test_the_patterns_keep_the_context_and_drop_the_secret(text, kept, gone):
    result = redact(text)

    assert kept in result
    assert gone not in result


@pytest.mark.parametrize(
    "text",
    ["vacuumed 12 tables in 3.2 s", "2026-12-01 03:00:00 UTC", "token expired, retrying", "exit 0"],
)
def test_ordinary_output_is_left_alone(text):
    assert redact(text) == text


def test_results_are_redacted_all_the_way_down():
    data = {"rows": [{"dsn": "redis://u:p4ss@cache:6379/0"}], "n": 3}

    assert redact_data(data) == {
        "rows": [{"dsn": "redis://u:[REDACTED:connection-string]@cache:6379/0"}],
        "n": 3,
    }


def test_an_installation_adds_its_own_pattern(settings):
    settings.REDACTION_PATTERNS = [*settings.REDACTION_PATTERNS, ("member-id", r"\bMBR\d{6}\b")]

    assert redact("member MBR123456 billed") == "member [REDACTED:member-id] billed"


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_secret_a_script_prints_never_reaches_the_database_an_export_or_a_page(
    celery_worker, tmp_path, settings, client, requester, operator, compliance, tenant
):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "leaky.sh").write_text(LEAKY)
    (scripts / "leaky.sh").chmod(0o755)
    settings.MAINTENANCE_SCRIPTS_DIR = str(scripts)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.RUN_HEARTBEAT_SECONDS = 1  # flushes while the split line is half printed
    calm_calendar()
    change = with_procedure(
        approved_change(requester, tenant, ComponentFactory(name="claims-db"), title="Leaky"),
        requester,
        "maintenance_script",
        script="leaky.sh",
        timeout_seconds="60",
        expect_output="all good",
    )
    window = window_opening_soon(seconds=2)
    schedule_all([change], window, operator)
    wait_until(lambda: window.is_open(), timeout=10, what="the window to open")

    execution = window_start(window=window, by=operator)
    wait_until(
        lambda: MaintenanceExecution.objects.get(pk=execution.pk).status in ("COMPLETED", "FAILED"),
        timeout=60,
        what="the execution to finish",
    )

    run = ProcedureRun.objects.get(change=change)
    assert run.status == "SUCCEEDED", run.error
    stored = " ".join(
        [run.output, run.error, json.dumps(run.result)]
        + [s.output + json.dumps(s.result) for s in StepRun.objects.filter(run=run)]
    )
    assert "[REDACTED:password]" in stored and "[REDACTED:ssn]" in stored
    assert "all good" in stored
    client.force_login(compliance)
    pack = zipfile.ZipFile(
        io.BytesIO(b"".join(client.get(f"/changes/{change.pk}/evidence.zip").streaming_content))
    )
    exported = " ".join(pack.read(n).decode("utf-8", "replace") for n in pack.namelist())
    register = json.dumps(csv_rows(client.get("/reports/changes.csv")))
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "[REDACTED:connection-string]" in page and "[REDACTED:connection-string]" in exported
    for secret in SECRETS:
        assert secret not in stored, secret
        assert secret not in exported, secret
        assert secret not in register, secret
        assert secret not in page, secret
