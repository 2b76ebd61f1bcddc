"""The main pages, as each role meets them in Chromium, pass axe-core (WCAG 2 A and AA
and axe's best practices) and log nothing to the console: no script error and no CSP
violation, such as the inline indicator style htmx adds unless told not to (issue 8,
item 12).

Before the fixes axe found colour-contrast failures (the amber of "In review",
"Pending" and high risk, 4.3:1 on its tint), an unnamed progress bar on the window page
and empty table headers; without ``includeIndicatorStyles: false`` every page logged
"Applying inline style violates ... style-src 'self'".
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.axe import axe_violations, describe, install_axe
from tests.e2e.world import build_world
from tests.factories import PASSWORD
from tests.maintenance.execution_helpers import write_scripts

pytestmark = [pytest.mark.e2e, pytest.mark.worker]

ROLES = ["requester", "security", "operator", "compliance", "cto"]


@pytest.fixture
def scripts(tmp_path, settings):
    settings.MAINTENANCE_SCRIPTS_DIR = str(write_scripts(tmp_path / "scripts"))
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "scripts"


@pytest.fixture
def world(
    celery_worker, scripts, requester, operator, security, compliance, cto, superuser, tenant
):
    return build_world(requester=requester, operator=operator, superuser=superuser, tenant=tenant)


def _watched_page(browser: Browser, who: str, console: list[str]) -> Page:
    """A page in a context of its own, axe loaded, its console errors collected."""
    context = browser.new_context()
    install_axe(context)
    page = context.new_page()
    page.on("pageerror", lambda exc: console.append(f"{who} {page.url}: {exc}"))
    page.on(
        "console",
        lambda msg: (
            console.append(f"{who} {page.url} [{msg.location.get('url')}]: {msg.text}")
            if msg.type == "error"
            else None
        ),
    )
    return page


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _check(page: Page, url: str, status: int, where: str, findings: dict) -> None:
    response = page.goto(url)
    assert response is not None and response.status == status, f"{where}: {response.status}"
    page.wait_for_load_state("networkidle")  # htmx fragments loaded, polls settled
    lines = describe(axe_violations(page))
    if lines:
        findings[where] = lines


def test_the_main_pages_pass_axe_and_log_no_console_error_for_each_role(
    browser: Browser, live_server, world
):
    console: list[str] = []
    findings: dict[str, list[str]] = {}
    base = live_server.url

    anonymous = _watched_page(browser, "anonymous", console)
    _check(anonymous, f"{base}/accounts/login/", 200, "sign-in page", findings)
    anonymous.context.close()

    for role in ROLES:
        page = _watched_page(browser, role, console)
        _sign_in(page, base, role)
        for name, path in world.pages(role):
            _check(page, f"{base}{path}", 200, f"{role}: {name}", findings)
        if role == "requester":
            _check(page, f"{base}/no-such-page/", 404, "requester: not found page", findings)
            _check(page, f"{base}/approvals/", 403, "requester: refused page", findings)
        page.context.close()

    report = "\n".join(f"{where}:\n  " + "\n  ".join(lines) for where, lines in findings.items())
    assert not findings, f"axe-core {len(findings)} page(s):\n{report}"
    # Chromium logs the 404 and 403 documents asked for above as failed loads: those
    # two lines and nothing else (a missing stylesheet on them would still show).
    expected = {
        f"requester {base}{path} [{base}{path}]: Failed to load resource: the server "
        f"responded with a status of {status} ({reason})"
        for path, status, reason in (
            ("/no-such-page/", 404, "Not Found"),
            ("/approvals/", 403, "Forbidden"),
        )
    }
    assert [line for line in console if line not in expected] == []
