"""An operator schedules, runs and documents a window in Chromium, with a real worker."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from changes.models import ChangeRequest
from maintenance.models import MaintenanceWindow, WindowType
from tests.factories import PASSWORD, ComponentFactory
from tests.maintenance.execution_helpers import (
    approved_change,
    calm_calendar,
    open_now,
    with_procedure,
    write_scripts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


@pytest.fixture
def scripts(tmp_path, settings):
    settings.MAINTENANCE_SCRIPTS_DIR = str(write_scripts(tmp_path / "scripts"))
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "scripts"


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My work")).to_be_visible()


def test_an_operator_schedules_starts_and_documents_a_window(
    page: Page, live_server, celery_worker, scripts, requester, operator, tenant
):
    calm_calendar()
    change = with_procedure(
        approved_change(
            requester,
            tenant,
            ComponentFactory(name="claims-api"),
            title="Rotate claims API logs",
            minutes=15,
        ),
        requester,
        "maintenance_script",
        script="succeed.sh",
        arguments="1",
        timeout_seconds="60",
        expect_output="all good",
    )
    # The next routine window (the generator makes these weekly).
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE,
        start=timezone.now() + timedelta(hours=2),
        duration_minutes=240,
        notification_offsets=[1440, 60],
        title="Routine window (test)",
    )
    base = live_server.url
    _sign_in(page, base, "operator")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Calendar").click()
    expect(page.get_by_test_id(f"window-{window.pk}")).to_contain_text("Routine")

    page.goto(f"{base}{change.get_absolute_url()}")
    page.get_by_role("link", name="Schedule", exact=True).click()
    expect(page.get_by_test_id("suggested-window")).to_contain_text("Routine window")
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_test_id("change-state")).to_have_text("Scheduled")

    page.get_by_role("link", name="Routine window (test)").click()
    expect(page.get_by_test_id("window-status")).to_have_text("Planned")
    open_now(window)  # the window's start comes
    page.reload()
    page.get_by_role("button", name="Start window").click()

    expect(page.get_by_test_id("execution-status")).to_have_text("Completed", timeout=60_000)
    expect(page.get_by_test_id("slot-state")).to_have_text("Completed")

    page.get_by_role("link", name="Execution report").click()
    expect(page.get_by_test_id("report-status")).to_have_text("Completed")
    download_link = page.get_by_role("link", name="Download report (PDF)")
    for _ in range(30):  # the worker renders the PDF a moment after the window ends
        if download_link.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    with page.expect_download() as info:
        download_link.click()
    pdf = PdfReader(io.BytesIO(open(info.value.path(), "rb").read()))  # noqa: SIM115
    text = "".join(p.extract_text() for p in pdf.pages)
    assert change.public_id in text
    assert ChangeRequest.objects.get(pk=change.pk).state == "completed"
