"""Production settings pass Django's deploy check; bad settings stop start-up clearly."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
TEST_DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
STRONG_KEY = secrets.token_urlsafe(64)
FERNET_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
SIGNING_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


def manage(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process with only the given portal settings."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if key in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}
    }
    clean.update({"PORTAL_VAR_DIR": str(tmp_path / "var"), "PYTHONDONTWRITEBYTECODE": "1"})
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def production_env(**overrides: str) -> dict[str, str]:
    # The database does not exist: the deploy check must not need a connection.
    database_url = TEST_DATABASE_URL.rsplit("/", 1)[0] + "/portal_deploy_check_absent"
    env = {
        "PORTAL_ENV": "production",
        "SECRET_KEY": STRONG_KEY,
        "FIELD_ENCRYPTION_KEY": FERNET_KEY,
        "EVIDENCE_SIGNING_KEY": SIGNING_KEY,
        "ALLOWED_HOSTS": "portal.example.org",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def test_production_settings_pass_the_deploy_check(tmp_path):
    result = manage(["check", "--deploy", "--fail-level", "WARNING"], tmp_path, **production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_harden_cookies_and_transport(tmp_path):
    script = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME)"
    )
    result = manage(["shell", "--no-imports", "-c", script], tmp_path, **production_env())

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "True",
        "True",
        "True",
        "31536000",
        "__Host-sessionid",
        "__Host-csrftoken",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            production_env(SECRET_KEY=None),
            "SECRET_KEY must be set when PORTAL_ENV=production",
            id="production-without-secret-key",
        ),
        pytest.param(
            production_env(SECRET_KEY="short-and-guessable"),
            "SECRET_KEY must be at least 50 characters of varied text",
            id="production-with-a-weak-secret-key",
        ),
        pytest.param(
            production_env(FIELD_ENCRYPTION_KEY=None),
            "FIELD_ENCRYPTION_KEY must be set when PORTAL_ENV=production",
            id="production-without-field-encryption-key",
        ),
        pytest.param(
            production_env(ALLOWED_HOSTS=None),
            "ALLOWED_HOSTS must be set when PORTAL_ENV=production",
            id="production-without-allowed-hosts",
        ),
        pytest.param(
            production_env(DEBUG="true"),
            "DEBUG must be off when PORTAL_ENV=production",
            id="production-with-debug",
        ),
        pytest.param(
            {"DEBUG": "maybe"},
            "DEBUG must be a boolean (true/false), got 'maybe'",
            id="debug-not-a-boolean",
        ),
        pytest.param(
            {"SESSION_IDLE_MINUTES": "fifteen"},
            "SESSION_IDLE_MINUTES must be an integer, got 'fifteen'",
            id="idle-minutes-not-an-integer",
        ),
        pytest.param(
            {"SESSION_IDLE_MINUTES": "0"},
            "SESSION_IDLE_MINUTES must be at least 1, got 0",
            id="idle-minutes-out-of-range",
        ),
        pytest.param(
            {"PORTAL_ENV": "staging"},
            "PORTAL_ENV must be one of development, test, production, got 'staging'",
            id="unknown-environment",
        ),
        pytest.param(
            {"DATABASE_URL": "mysql://portal@db/portal"},
            "DATABASE_URL must point at PostgreSQL or SQLite",
            id="unsupported-database",
        ),
        pytest.param(
            {"CELERY_BROKER_URL": "amqp://guest@localhost//"},
            "CELERY_BROKER_URL must be redis://, rediss:// or filesystem://",
            id="unsupported-broker",
        ),
    ],
)
def test_a_bad_setting_stops_start_up_with_a_clear_message(tmp_path, env, message):
    result = manage(["check"], tmp_path, **env)

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == f"django.core.exceptions.ImproperlyConfigured: {message}"
