"""Settings for the Change & Maintenance Portal, driven by environment variables.

Every variable is documented in README.md and .env.example. A bad value raises
ImproperlyConfigured at start-up.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_choice, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

PORTAL_ENV = env_choice("PORTAL_ENV", "development", ("development", "test", "production"))
PRODUCTION = PORTAL_ENV == "production"

# Outside production a per-checkout key is kept in var/ so sessions survive restarts.
_dev_key_file = VAR_DIR / "dev-secret-key"
if not PRODUCTION and not _dev_key_file.exists():
    _dev_key_file.write_text(secrets.token_urlsafe(64))
SECRET_KEY = env_secret(
    "SECRET_KEY",
    required=PRODUCTION,
    fallback="" if PRODUCTION else _dev_key_file.read_text().strip(),
)
# Fernet keys for secrets kept in the database (database target passwords). The first
# key encrypts; further comma-separated keys only decrypt, so a key can be rotated.
_dev_field_key_file = VAR_DIR / "dev-field-encryption-key"
if not PRODUCTION and not _dev_field_key_file.exists():
    _dev_field_key_file.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    _dev_field_key_file.chmod(0o600)
_field_keys = env_str(
    "FIELD_ENCRYPTION_KEY", "" if PRODUCTION else _dev_field_key_file.read_text().strip()
)
if not _field_keys.strip():
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set when PORTAL_ENV=production")
FIELD_ENCRYPTION_KEYS = [key.strip() for key in _field_keys.split(",") if key.strip()]
for _key in FIELD_ENCRYPTION_KEYS:
    try:
        _key_ok = len(base64.urlsafe_b64decode(_key.encode("ascii"))) == 32
    except (binascii.Error, ValueError):
        _key_ok = False
    if not _key_ok:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be comma-separated Fernet keys (32 random bytes, "
            "url-safe base64 encoded); generate one with `python -c 'from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())'`"
        )

# Off unless asked for (DEBUG=1), in development too: a traceback page shows settings
# and data to whoever triggers it. WhiteNoise serves static files either way.
DEBUG = env_bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when PORTAL_ENV=production")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when PORTAL_ENV=production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "guardian",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_celery_beat",
    "django_celery_results",
    "portal",
    "changes",
    "maintenance",
    "dbops",
    # Exports, evidence packs, KPIs, MFA and retention (imports all above).
    "compliance",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc, served from the package (no CDN)
    # The top layer: the REST API, its tokens and the deployment gate.
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside everything that touches the database, so it sees their failures too.
    "portal.middleware.DatabaseUnavailableMiddleware",
    "portal.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.TimezoneMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After the messages middleware: it tells the signed-out user why.
    "portal.middleware.SessionTimeoutMiddleware",
    # After the OTP middleware and the session limits: every request of a user whose
    # roles require MFA (or who enrolled) needs a verified device, not only the login.
    "compliance.mfa.middleware.MfaRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    # Innermost: renders an escaped refusal and audits the 403s and hidden 404s of views.
    "portal.http.RefusalMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so the demo's web and worker processes
    # queue for it instead of failing with "database is locked" mid-transaction. WAL
    # lets readers go on while one writes (the default journal makes a commit wait for
    # every reader); NORMAL is durable in WAL mode except for power loss.
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 20, minimum=1),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    _db["CONN_MAX_AGE"] = 0
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db["ENGINE"] = "portal.db.postgresql"
    _db.setdefault("OPTIONS", {})["connect_timeout"] = 5
    # No JIT: the lists' LIMIT queries look costly to the planner (it cannot know the
    # page fills early), so it compiled them for seconds to run them for milliseconds.
    _db["OPTIONS"]["options"] = f"{_db['OPTIONS'].get('options', '')} -c jit=off".strip()
else:
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL or SQLite")
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A lost database (restart, failover, a SQLite lock held too long) is answered with a
# 503 page and this Retry-After; a GET/HEAD is first tried once more after the pause.
DATABASE_UNAVAILABLE_RETRY_AFTER = env_int("DATABASE_UNAVAILABLE_RETRY_AFTER", 5, minimum=1)
DATABASE_READ_RETRY_DELAY_MS = env_int("DATABASE_READ_RETRY_DELAY_MS", 500, minimum=0)

# Only the test suite's flush may TRUNCATE the audit table (see portal/db/postgresql).
AUDIT_ALLOW_TEST_TRUNCATE = False

# --- Authentication ---------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "login"

# HIPAA 164.312(a)(2)(iii): automatic logoff. Both limits are checked on the server.
SESSION_IDLE_TIMEOUT = timedelta(minutes=env_int("SESSION_IDLE_MINUTES", 15, minimum=1))
SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=env_int("SESSION_ABSOLUTE_HOURS", 12, minimum=1))
# The stored session outlives the idle limit so that SessionTimeoutMiddleware, not a
# silently vanished session, ends it: the user is told why and the logoff is audited.
SESSION_COOKIE_AGE = int(SESSION_ABSOLUTE_TIMEOUT.total_seconds())
SESSION_SAVE_EVERY_REQUEST = True
# Django's database store, except that a lost database is not reported as a deleted session.
SESSION_ENGINE = "portal.sessions"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
# The account is what gets locked: by IP as well would lock a whole clinic behind one
# NAT address out of the portal after one person's typos.
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
# AXES_RESET_ON_SUCCESS and AXES_SENSITIVE_PARAMETERS: see portal/settings_compliance.py.
# The lock lasts the 15 minutes the locked page promises: a retry during it is refused
# and audited but does not restart the clock, or a patient user would never get back in.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env_int("PROXY_COUNT", 0, minimum=0)

GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None

# --- Security headers -------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

# --- Internationalisation: stored in UTC, shown in the viewer's zone ---------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
if not PRODUCTION:
    # The finders serve static files here; an existing STATIC_ROOT stops WhiteNoise
    # warning "No directory at" on every start.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
# Without autorefresh WhiteNoise walks every app's static files when its middleware is
# built: 50 ms for each test client (the suite builds thousands). Under test it looks a
# file up when it is asked for instead, as in development.
WHITENOISE_AUTOREFRESH = DEBUG or PORTAL_ENV == "test"

# --- E-mail -----------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "change-portal@localhost")
# Where django.core.mail.backends.filebased.EmailBackend writes (the drills count mail).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))

# --- Celery -----------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "filesystem://")):
    raise ImproperlyConfigured("CELERY_BROKER_URL must be redis://, rediss:// or filesystem://")
# The longest procedure may use a whole routine window (240 min); Redis must not
# re-deliver an unacknowledged task before that, so the visibility timeout is 6 h.
PROCEDURE_TIME_LIMIT = 4 * 60 * 60
if CELERY_BROKER_URL.startswith("filesystem://"):
    for folder in ("queue", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        # Fan-out (worker remote control) tables; kombu's default is ./control, relative
        # to whichever directory each process happens to start in.
        "control_folder": str(BROKER_DIR / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": PROCEDURE_TIME_LIMIT + 2 * 60 * 60,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        # A publisher tries the broker twice at once, then gives up and leaves the row to
        # the outbox relay. Without a limit kombu keeps retrying for the whole
        # connection timeout, on every message of a request.
        "max_retries": 1,
        "interval_start": 0,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 10 * 60
CELERY_TASK_TIME_LIMIT = 11 * 60
CELERY_TASK_PUBLISH_RETRY = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task modules beyond the apps' own tasks.py (comma-separated), e.g. a drill's slow task.
CELERY_IMPORTS = env_list("CELERY_EXTRA_IMPORTS", [])
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "relay-outbox": {"task": "portal.relay_outbox", "schedule": 10.0},
    "generate-routine-windows": {"task": "maintenance.generate_windows", "schedule": 3600.0},
    "pre-start-notifications": {"task": "maintenance.send_pre_start_notices", "schedule": 60.0},
    "start-due-windows": {"task": "maintenance.start_due_windows", "schedule": 60.0},
    "reap-stale-runs": {"task": "maintenance.reap_stale_runs", "schedule": 60.0},
    "enforce-cutoffs": {"task": "maintenance.enforce_cutoffs", "schedule": 30.0},
    "escalate-overdue-approvals": {
        "task": "changes.escalate_overdue_approvals",
        "schedule": 300.0,
    },
    "expire-delegations": {"task": "changes.expire_delegations", "schedule": 300.0},
    # Daily statistics per database target, for trends and before/after comparisons.
    "dbops-snapshot-statistics": {
        "task": "dbops.snapshot_statistics",
        "schedule": crontab(hour=2, minute=30),
    },
    # Installed versions of every inventoried component, and advisories dropped in a folder.
    "security-refresh-inventory": {"task": "security.refresh_inventory", "schedule": 3600.0},
    "security-import-advisories": {"task": "security.import_advisories", "schedule": 900.0},
    "security-prune-backups": {
        "task": "security.prune_backups",
        "schedule": crontab(hour=3, minute=15),
    },
}
# The outbox (portal/outbox.py): a message published but not run within this many
# seconds is published again (a broker without persistence that restarts forgets its
# queue; a second copy is skipped by the worker). A task that raises is retried after a
# back-off doubling from this, and given up after OUTBOX_MAX_FAILURES failures.
OUTBOX_REDELIVER_SECONDS = env_int("OUTBOX_REDELIVER_SECONDS", 300, minimum=1)
OUTBOX_MAX_FAILURES = env_int("OUTBOX_MAX_FAILURES", 5, minimum=1)
# /healthz reports degraded while a task has waited longer than this to be done.
OUTBOX_STALE_SECONDS = env_int("OUTBOX_STALE_SECONDS", 900, minimum=1)
# A stopping worker lets running procedures go on this long, then ends their work and
# marks them INTERRUPTED (the supervisor waits a little longer before a cold shutdown).
WORKER_STOP_GRACE_SECONDS = env_int("WORKER_STOP_GRACE_SECONDS", 30, minimum=0)
# runportal: on Ctrl-C/SIGTERM the worker gets this long to finish its tasks (Celery's
# warm shutdown; longer than the worker's grace, so a procedure is marked INTERRUPTED
# rather than cut short), then a cold one, after RUNPORTAL_COLD_STOP_SECONDS a kill.
_grace = WORKER_STOP_GRACE_SECONDS + 15
RUNPORTAL_STOP_GRACE_SECONDS = env_int("RUNPORTAL_STOP_GRACE_SECONDS", _grace, minimum=0)
RUNPORTAL_COLD_STOP_SECONDS = env_int("RUNPORTAL_COLD_STOP_SECONDS", 10, minimum=1)
# How long gunicorn keeps an idle browser connection open (see runportal).
WEB_KEEPALIVE_SECONDS = env_int("WEB_KEEPALIVE_SECONDS", 75, minimum=1)
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 15, minimum=1)
WORKER_HEARTBEAT_STALE_SECONDS = env_int("WORKER_HEARTBEAT_STALE_SECONDS", 90, minimum=5)

# Database procedures' runs go to one of this many queues, by target id (a queue per
# target when there are at most this many targets): dbops.target.0 … dbops.target.N-1.
DBOPS_TARGET_QUEUES = env_int("DBOPS_TARGET_QUEUES", 8, minimum=1)

# --- REST API (api/): bearer tokens or the session, JSON only, RFC 9457 problems ---------
# Django REST framework's and drf-spectacular's dictionaries, in portal/settings_api.py.
from portal.settings_api import REST_FRAMEWORK, SPECTACULAR_SETTINGS  # noqa: E402, F401

API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 120, minimum=1)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365, minimum=1)

# --- Maintenance procedures ---------------------------------------------------------
# Only scripts directly inside this directory can be run by the "Maintenance script"
# procedure.
MAINTENANCE_SCRIPTS_DIR = env_str("MAINTENANCE_SCRIPTS_DIR", str(BASE_DIR / "maintenance_scripts"))
RUN_HEARTBEAT_SECONDS = env_int("RUN_HEARTBEAT_SECONDS", 5, minimum=1)
# A running procedure whose heartbeat is older than this is marked INTERRUPTED.
RUN_STALE_SECONDS = env_int("RUN_STALE_SECONDS", 60, minimum=5)

# --- Security updates ----------------------------------------------------------------
# Only virtual environments directly inside this directory are inventoried and patched.
SECURITY_ENVIRONMENTS_DIR = env_str(
    "SECURITY_ENVIRONMENTS_DIR", str(BASE_DIR / "service_environments")
)
# Where `pip install` takes target versions from: a wheel directory (no network, wins
# when both are set) or a package index URL.
SECURITY_WHEEL_DIR = env_str("SECURITY_WHEEL_DIR", "")
SECURITY_PACKAGE_INDEX_URL = env_str("SECURITY_PACKAGE_INDEX_URL", "")
if SECURITY_PACKAGE_INDEX_URL and not SECURITY_PACKAGE_INDEX_URL.startswith(
    ("https://", "http://", "file://")
):
    raise ImproperlyConfigured("SECURITY_PACKAGE_INDEX_URL must be an http(s):// or file:// URL")
# OSV JSON files dropped here are imported by beat (no network needed).
SECURITY_ADVISORIES_DIR = env_str("SECURITY_ADVISORIES_DIR", str(VAR_DIR / "advisories"))
# Backup files older than this are deleted from storage; their records stay as evidence.
SECURITY_BACKUP_RETENTION_DAYS = env_int("SECURITY_BACKUP_RETENTION_DAYS", 30, minimum=1)

# --- Demo -------------------------------------------------------------------------
DEMO_PASSWORD = env_str("DEMO_PASSWORD", "")

# --- Logging: request ids on every line, secrets never -----------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "portal.context.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # Django's own console handler (on with DEBUG) would print every refused
        # request's traceback a second time: its records reach the root's handler alone.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
    },
}

# Absolute links where no request says which address the user reached us at (e-mails
# sent by the worker); pages and feeds build theirs from the request. `runportal --bind`
# sets it from the bind address for its children when it is not set.
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
try:
    _base_url = urlsplit(PORTAL_BASE_URL)
    _base_url_ok = _base_url.scheme in ("http", "https") and bool(_base_url.hostname)
    _base_url_ok = _base_url_ok and not (_base_url.query or _base_url.fragment)
    _base_url.port  # noqa: B018  (raises ValueError on a port out of range)
except ValueError:
    _base_url_ok = False
if not _base_url_ok:
    raise ImproperlyConfigured(
        "PORTAL_BASE_URL must be the portal's address, such as https://portal.example.org"
    )

# --- Compliance: MFA, evidence signing, retention, exports, redaction --------------------
# Read in portal/settings_compliance.py (documented there, in README.md and .env.example).
from portal.settings_compliance import compliance_settings  # noqa: E402

globals().update(compliance_settings(production=PRODUCTION, var_dir=VAR_DIR))
