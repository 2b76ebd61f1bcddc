"""Sign-in, automatic logoff and the page guards (HIPAA 164.312(a), (b), (d))."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from portal.models import AuditEvent
from tests.factories import PASSWORD

LOGIN_URL = "/accounts/login/"
WRONG_PASSWORD = "not the password at all"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def sign_in(client: Client, username: str, password: str = PASSWORD):
    return client.post(LOGIN_URL, {"username": username, "password": password})


def nav_labels(response) -> list[str]:
    html = response.content.decode()
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S)
    assert nav, "the page has no main navigation"
    return re.findall(r"<a [^>]*>([^<]+)</a>", nav.group(1))


# --- failed sign-ins and lockout ------------------------------------------------------


def test_it_locks_the_account_after_five_failures(client, requester):
    for attempt in range(1, 5):
        response = sign_in(client, "requester", WRONG_PASSWORD)
        assert response.status_code == 200, attempt
        assert "Please enter a correct username and password" in response.content.decode()

    response = sign_in(client, "requester", WRONG_PASSWORD)

    assert response.status_code == 429
    page = response.content.decode()
    assert "Account locked" in page
    assert "Too many failed sign-in attempts for this account. It is locked for 15 minutes." in page
    failures = AuditEvent.objects.filter(action="auth.login_failed", username="requester")
    assert failures.count() == 5
    assert set(failures.values_list("outcome", flat=True)) == {AuditEvent.Outcome.FAILURE}
    lockout = AuditEvent.objects.get(action="auth.lockout")
    assert lockout.username == "requester"
    assert lockout.outcome == AuditEvent.Outcome.DENIED
    assert lockout.ip_address == "127.0.0.1"


def test_a_locked_account_stays_locked_even_with_the_right_password(client, requester):
    for _ in range(5):
        sign_in(client, "requester", WRONG_PASSWORD)

    response = sign_in(client, "requester", PASSWORD)

    assert response.status_code == 429
    assert "It is locked for 15 minutes" in response.content.decode()
    assert not AuditEvent.objects.filter(action="auth.login").exists()
    assert client.get("/").status_code == 302


def test_the_lock_lifts_after_fifteen_minutes(client, requester):
    with time_machine.travel(T0, tick=False) as traveller:
        for _ in range(5):
            sign_in(client, "requester", WRONG_PASSWORD)
        traveller.shift(timedelta(minutes=14))
        assert sign_in(client, "requester", PASSWORD).status_code == 429

        traveller.shift(timedelta(minutes=2))
        response = sign_in(client, "requester", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_the_lock_is_per_account_not_per_address(client, requester, engineer):
    for _ in range(5):
        sign_in(client, "requester", WRONG_PASSWORD)

    response = sign_in(client, "engineer", PASSWORD)

    assert response.status_code == 302


def test_the_audit_trail_never_holds_the_attempted_password(client, requester):
    sign_in(client, "requester", WRONG_PASSWORD)

    event = AuditEvent.objects.get(action="auth.login_failed")
    assert WRONG_PASSWORD not in str(event.details)
    assert WRONG_PASSWORD not in event.object_id


# --- successful sign-in and sign-out ---------------------------------------------------


def test_it_audits_a_successful_sign_in(client, requester):
    response = sign_in(client, "requester")

    assert response.status_code == 302
    assert response["Location"] == "/"
    event = AuditEvent.objects.get(action="auth.login")
    assert event.user == requester
    assert event.username == "requester"
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.ip_address == "127.0.0.1"
    assert event.request_id == response["X-Request-ID"]


def test_it_audits_sign_out_and_ends_the_session(client, requester):
    sign_in(client, "requester")

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL
    event = AuditEvent.objects.get(action="auth.logout")
    assert event.user == requester
    assert client.get("/").status_code == 302


# --- automatic logoff ------------------------------------------------------------------


def test_it_signs_out_after_fifteen_idle_minutes(client, requester):
    with time_machine.travel(T0, tick=False) as traveller:
        sign_in(client, "requester")
        traveller.shift(timedelta(minutes=14))
        assert client.get("/").status_code == 200

        traveller.shift(timedelta(minutes=15, seconds=1))
        response = client.get("/notifications/")

        assert response.status_code == 302
        assert response["Location"] == f"{LOGIN_URL}?next=/notifications/"
        login_page = client.get(response["Location"])
    assert "You were signed out after 15 minutes without activity." in login_page.content.decode()
    event = AuditEvent.objects.get(action="auth.session_expired")
    assert event.user == requester
    assert "without activity" in event.details["reason"]
    assert client.get("/").status_code == 302


def test_it_signs_out_after_twelve_hours_however_active(client, requester):
    with time_machine.travel(T0, tick=False) as traveller:
        sign_in(client, "requester")
        # Active every 14 minutes: the idle limit never applies.
        for _ in range(12 * 60 // 14):
            traveller.shift(timedelta(minutes=14))
            assert client.get("/").status_code == 200
        traveller.move_to(T0 + timedelta(hours=12, minutes=1))
        response = client.get("/")

        assert response.status_code == 302
        assert response["Location"] == f"{LOGIN_URL}?next=/"
        login_page = client.get(response["Location"])
    assert "Your session reached its maximum length." in login_page.content.decode()
    event = AuditEvent.objects.get(action="auth.session_expired")
    assert event.user == requester
    assert "maximum length" in event.details["reason"]


def test_an_htmx_request_of_an_expired_session_is_sent_to_sign_in(client, requester):
    with time_machine.travel(T0, tick=False) as traveller:
        sign_in(client, "requester")
        traveller.shift(timedelta(minutes=16))
        response = client.get("/notifications/", headers={"HX-Request": "true"})

    assert response.status_code == 204
    assert response["HX-Redirect"] == LOGIN_URL


# --- CSRF and security headers --------------------------------------------------------


def test_a_post_without_a_csrf_token_is_refused(requester):
    client = Client(enforce_csrf_checks=True)

    response = client.post(LOGIN_URL, {"username": "requester", "password": PASSWORD})

    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_a_signed_in_post_needs_the_csrf_token_too(requester):
    client = Client(enforce_csrf_checks=True)
    client.force_login(requester)
    client.get("/notifications/")  # sets the CSRF cookie

    assert client.post("/notifications/read/").status_code == 403
    token = client.cookies["csrftoken"].value
    assert client.post("/notifications/read/", headers={"X-CSRFToken": token}).status_code == 302


def test_responses_carry_the_security_headers(client, db):
    response = client.get(LOGIN_URL)

    assert response.status_code == 200
    directives = {
        part.strip().split(" ", 1)[0]: part.strip()
        for part in response["Content-Security-Policy"].split(";")
        if part.strip()
    }
    assert directives["script-src"] == "script-src 'self'"
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert directives["object-src"] == "object-src 'none'"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_pages_hold_no_inline_script(client, requester):
    sign_in(client, "requester")

    for url in (LOGIN_URL, "/", "/notifications/"):
        html = client.get(url, follow=True).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, f"{url} has an inline script: {tag}"


# --- navigation and page guards --------------------------------------------------------


def test_the_navigation_hides_reports_and_admin_from_a_requester(client, requester):
    client.force_login(requester)

    labels = nav_labels(client.get("/"))

    assert "Dashboard" in labels
    assert "Reports" not in labels
    assert "Admin" not in labels


def test_the_navigation_shows_reports_to_compliance(client, compliance):
    client.force_login(compliance)

    labels = nav_labels(client.get("/"))

    assert "Reports" in labels
    assert "Admin" not in labels


def test_the_navigation_shows_admin_only_to_staff(client, make_user):
    staff = make_user("helpdesk", [], is_staff=True)
    client.force_login(staff)

    labels = nav_labels(client.get("/"))

    assert "Admin" in labels
    assert "Reports" not in labels


@pytest.mark.parametrize("role_user", ["requester", "engineer", "operator", "security", "cto"])
def test_the_audit_reports_are_refused_to_other_roles(client, role_user, request):
    client.force_login(request.getfixturevalue(role_user))

    assert client.get("/reports/").status_code == 403


def test_the_audit_reports_open_for_compliance(client, compliance):
    client.force_login(compliance)

    response = client.get("/reports/")

    assert response.status_code == 200
    assert "Audit trail" in response.content.decode()


def test_the_audit_reports_need_sign_in(client, db):
    response = client.get("/reports/")

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next=/reports/"


def test_the_dashboard_needs_sign_in(client, db):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next=/"


def test_the_dashboard_shows_my_work_once_signed_in(client, requester):
    sign_in(client, "requester")

    response = client.get("/")

    assert response.status_code == 200
    assert "<h1>My work</h1>" in response.content.decode()
