"""Chromium: Compliance filters the register, downloads CSV and XLSX, verifies the chain,
prepares a background export and takes an evidence pack the verifier passes; an
approver enrols a TOTP device and signs in with a code."""

from __future__ import annotations

import base64
import csv
import subprocess
import sys
import time
import zipfile
from binascii import unhexlify
from pathlib import Path

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from compliance import signing
from tests.compliance.conftest import xlsx_rows
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def test_compliance_exports_the_register_verifies_the_chain_and_checks_an_evidence_pack(
    page: Page, live_server, celery_worker, compliance, ran_change, make_change, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    make_change(title="A feature nobody audits", type="FEATURE")
    errors = _errors(page)
    base = live_server.url
    sign_in(page, base, "compliance")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    register = page.locator("#register-form")
    register.get_by_label("Type").select_option("SECURITY")
    with page.expect_download() as csv_download:
        register.get_by_role("button", name="Download CSV").click()
    with page.expect_download() as xlsx_download:
        register.get_by_role("button", name="Download XLSX").click()

    csv_path = Path(csv_download.value.path())
    rows = list(csv.reader(csv_path.read_text("utf-8-sig").splitlines()))
    assert [r[0] for r in rows[1:]] == [ran_change.public_id]
    sheet = xlsx_rows(Path(xlsx_download.value.path()).read_bytes())
    assert [r[0] for r in sheet[1:]] == [ran_change.public_id]
    assert csv_download.value.suggested_filename.endswith(".csv")

    register.get_by_role("button", name="Prepare XLSX in the background").click()
    job_link = page.get_by_test_id("export-download").first
    expect(job_link).to_be_visible(timeout=30_000)
    with page.expect_download() as job_download:
        job_link.click()
    assert [r[0] for r in xlsx_rows(Path(job_download.value.path()).read_bytes())[1:]] == [
        ran_change.public_id
    ]

    page.get_by_role("button", name="Verify chain").click()
    expect(page.get_by_test_id("verification-result")).to_contain_text(
        "Chain intact", timeout=30_000
    )

    page.get_by_label("Action starts with").fill("change.")
    page.locator("form.filters").first.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-rows tbody tr").first).to_contain_text("change.")

    page.goto(f"{base}/changes/{ran_change.pk}/")
    with page.expect_download() as pack_download:
        page.get_by_test_id("evidence-pack").click()
    pack = tmp_path / pack_download.value.suggested_filename
    pack_download.value.save_as(pack)
    verifier = tmp_path / "verify_evidence.py"
    verifier.write_bytes(zipfile.ZipFile(pack).read("verify_evidence.py"))
    key = tmp_path / "signing-key.pem"
    key.write_text(page.request.get(f"{base}/reports/signing-key.pem").text())
    result = subprocess.run(
        [sys.executable, str(verifier), str(pack), "--public-key", str(key)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"OK: {ran_change.public_id}")
    assert key.read_text() == signing.public_key_pem()
    assert errors == []


def _code(key_hex: str, steps_ahead: int = 0) -> str:
    totp = TOTP(unhexlify(key_hex))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def test_an_approver_enrols_a_totp_device_and_signs_in_with_a_code(
    page: Page, live_server, celery_worker, security, settings
):
    settings.MFA_REQUIRED_ROLES = ["SECURITY", "ADMIN"]
    errors = _errors(page)
    base = live_server.url

    sign_in(page, base, "security")
    expect(page).to_have_url(f"{base}/mfa/enrol/?next=%2F")
    expect(page.get_by_test_id("mfa-qr").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("mfa-mode")).to_contain_text("Your roles require")
    secret = page.get_by_test_id("mfa-secret").inner_text()
    key_hex = base64.b32decode(secret + "=" * (-len(secret) % 8)).hex()
    page.get_by_label("Code from the app").fill(_code(key_hex))
    page.get_by_role("button", name="Enrol").click()

    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    page.get_by_role("link", name="Continue").click()
    expect(page.get_by_role("heading", name="My work", level=1)).to_be_visible()
    assert TOTPDevice.objects.get(user=security).confirmed

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "security")
    expect(page.get_by_role("heading", name="Two-factor verification")).to_be_visible()
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("Code").fill(_code(key_hex, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()

    expect(page.get_by_role("heading", name="My work", level=1)).to_be_visible()
    page.goto(f"{base}/approvals/")
    expect(page).to_have_url(f"{base}/approvals/")
    # The wrong code answered 400, which Chromium reports as a failed load; nothing else.
    assert errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
