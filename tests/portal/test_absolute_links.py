"""Absolute links name the address the user reached the portal at.

Feeds and pages build them from the request; e-mails, sent by a worker with no request,
use PORTAL_BASE_URL, which `runportal --bind` sets from its bind address.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from maintenance.calendar_services import calendar_token_create
from maintenance.models import MaintenanceWindow
from portal.celery import app
from portal.management.commands.runportal import base_url_for_bind
from portal.models import Notification
from portal.notifications import notification_send_email, notify
from tests.factories import UserFactory
from tests.services import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
HOST = "portal.example.test:8443"


@pytest.fixture
def other_host(settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "portal.example.test"]
    return HOST


@pytest.fixture
def window(db) -> MaintenanceWindow:
    day = timezone.now().date() + timedelta(days=7)
    return MaintenanceWindow.objects.create(
        type="ROUTINE",
        title="Routine window",
        start=datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC),
        duration_minutes=240,
        notification_offsets=[60],
    )


def _feed_events(response) -> list:
    assert response.status_code == 200
    return list(Calendar.from_ical(response.content).walk("VEVENT"))


@pytest.mark.django_db
def test_a_feed_fetched_through_a_host_links_to_that_host(client, operator, window, other_host):
    token = calendar_token_create(user=operator)

    response = client.get(
        reverse("calendar:feed", kwargs={"token": token.token}), HTTP_HOST=other_host
    )

    (event,) = [e for e in _feed_events(response) if str(e["UID"]).startswith("window-")]
    expected = f"http://{other_host}{window.get_absolute_url()}"
    assert str(event["URL"]) == expected
    assert expected in str(event["DESCRIPTION"])
    assert "127.0.0.1:8000" not in response.content.decode()


@pytest.mark.django_db
def test_a_feed_fetched_over_https_links_over_https(client, operator, window, other_host):
    token = calendar_token_create(user=operator)

    response = client.get(
        reverse("calendar:feed", kwargs={"token": token.token}), HTTP_HOST=other_host, secure=True
    )

    (event,) = [e for e in _feed_events(response) if str(e["UID"]).startswith("window-")]
    assert str(event["URL"]) == f"https://{other_host}{window.get_absolute_url()}"


@pytest.mark.django_db
def test_the_calendar_page_offers_the_feed_at_the_address_it_was_reached_at(
    client, operator, other_host
):
    token = calendar_token_create(user=operator)
    client.force_login(operator)

    response = client.get(reverse("calendar:month"), HTTP_HOST=other_host)

    assert response.status_code == 200
    path = reverse("calendar:feed", kwargs={"token": token.token})
    assert response.context["feed_url"] == f"http://{other_host}{path}"
    assert response.context["webcal_url"] == f"webcal://{other_host}{path}"
    assert f'value="http://{other_host}{path}"' in response.content.decode()


@pytest.mark.django_db
def test_a_host_that_is_not_allowed_gets_400_and_no_link_to_it(client, operator, window):
    token = calendar_token_create(user=operator)

    response = client.get(
        reverse("calendar:feed", kwargs={"token": token.token}), HTTP_HOST="evil.example"
    )

    assert response.status_code == 400
    assert b"evil.example" not in response.content


@pytest.mark.django_db
def test_emails_link_to_portal_base_url(settings):
    settings.PORTAL_BASE_URL = "https://portal.example.org"
    user = UserFactory(username="mailed", email="mailed@example.org")
    note = Notification.objects.create(recipient=user, subject="Window soon", url="/calendar/")

    assert notification_send_email(notification_id=note.pk)

    assert mail.outbox[-1].body.endswith("\n\nhttps://portal.example.org/calendar/")


@pytest.mark.parametrize(
    ("bind", "base_url"),
    [
        ("127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("localhost", "http://localhost:8000"),
        ("portal.internal:80", "http://portal.internal:80"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("[::1]:9001", "http://[::1]:9001"),
        ("[::]:9002", "http://[::1]:9002"),
        ("[::1]", "http://[::1]:8000"),
        ("unix:/run/portal.sock", None),
        ("fd://3", None),
    ],
)
def test_runportal_derives_the_base_url_from_its_bind_address(bind, base_url):
    assert base_url_for_bind(bind) == base_url


def manage_env(tmp_path: Path, **env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL"}}
    clean.update({"PORTAL_VAR_DIR": str(tmp_path / "var"), "PYTHONDONTWRITEBYTECODE": "1"})
    clean.update(env)
    return clean


@pytest.mark.parametrize(
    "value", ["portal.example.org", "ftp://portal.example.org", "http://x:99999", "http://"]
)
def test_a_portal_base_url_that_is_not_an_address_stops_start_up(tmp_path, value):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=manage_env(tmp_path, PORTAL_BASE_URL=value, DATABASE_URL="sqlite:///:memory:"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "PORTAL_BASE_URL must be the portal's address" in result.stderr


# --- runportal: its worker's e-mails link to the port it was told to bind -----------


@pytest.mark.worker
@pytest.mark.xdist_group("runportal")
@pytest.mark.django_db(transaction=True)
def test_runportal_bound_to_a_port_sends_email_links_on_that_port(tmp_path):
    port = free_port()
    db = connection.settings_dict
    log_path = tmp_path / "runportal.log"
    env = manage_env(
        tmp_path,
        PORTAL_ENV="test",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        PYTHONUNBUFFERED="1",
    )
    app.control.purge()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runportal", "--bind", f"127.0.0.1:{port}"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        user = UserFactory(username="linked", email="linked@example.org")
        with transaction.atomic():
            notes = notify(recipients=[user], subject="Window opens soon", url="/calendar/")
        assert len(notes) == 1
        deadline = time.monotonic() + 90
        expected = f"http://127.0.0.1:{port}/calendar/"
        while time.monotonic() < deadline and expected not in log_path.read_text(errors="replace"):
            assert proc.poll() is None, log_path.read_text(errors="replace")[-4000:]
            time.sleep(0.25)
        output = log_path.read_text(errors="replace")
        assert expected in output, output[-4000:]
        assert "127.0.0.1:8000" not in output
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
