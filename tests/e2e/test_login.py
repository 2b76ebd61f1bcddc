"""Signing in through a real Chromium against the live server."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.e2e


@pytest.fixture
def riley(transactional_db):
    return UserFactory(username="riley", roles=["REQUESTER"])


def test_a_requester_signs_in_and_sees_my_work(page: Page, live_server, riley):
    # A CSP violation or a broken script shows up as a console error.
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/")

    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    page.get_by_label("Username").fill("riley")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="My work", level=1)).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Dashboard")
    expect(page.get_by_role("navigation", name="Main")).not_to_contain_text("Reports")
    assert errors == []


def test_a_wrong_password_shows_an_error_on_the_sign_in_page(page: Page, live_server, riley):
    page.goto(f"{live_server.url}/accounts/login/")

    page.get_by_label("Username").fill("riley")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("alert")).to_contain_text(
        "Please enter a correct username and password."
    )
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_signing_out_returns_to_the_sign_in_page(page: Page, live_server, riley):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("riley")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My work")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
