"""Shared fixtures: role users, tenants, a real Celery worker, a real Chromium."""

from __future__ import annotations

import os
import shutil

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def behind_the_triggers():
    """Run SQL on the audit trail as a superuser can, behind its append-only triggers
    (replica mode skips ordinary triggers): how the tests make a tampered chain."""
    from django.db import connection

    def run(sql: str, params=()) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            try:
                cursor.execute(sql, params)
            finally:
                cursor.execute("SET session_replication_role = DEFAULT")

    return run


def _xdist_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def pytest_configure(config):
    from django.conf import settings

    from portal.celery import app

    # Only the suite's own flush may TRUNCATE the audit table (see portal/db/postgresql).
    settings.AUDIT_ALLOW_TEST_TRUNCATE = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Each xdist worker gets its own Redis database so queued tasks never cross over.
    # The databases after REDIS_URL's own: two runs given different REDIS_URL databases
    # on one server never share a queue.
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    base, _, db = redis_url.rpartition("/")
    first = int(db) if db.isdigit() else 0
    broker = f"{base}/{first + 1 + _xdist_index()}"
    settings.CELERY_BROKER_URL = broker
    app.conf.broker_url = broker
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration
    # (the Makefile exports it), which would put every xdist worker back on one database.
    os.environ["CELERY_BROKER_URL"] = broker
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 6 * 60 * 60,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "max_retries": 1,
        "interval_start": 0,
    }
    app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS


# --- tenants and role users ------------------------------------------------------


# The two tenants every test names: ours ("own") and another ("other").
TENANTS = {"own": ("acme", "Acme Health"), "other": ("globex", "Globex Clinics")}


def _tenant(whose: str):
    from tests.factories import TenantFactory

    slug, name = TENANTS[whose]
    return TenantFactory(slug=slug, name=name)


def _user(username: str, roles=(), *, tenants, **kwargs):
    from tests.factories import UserFactory

    return UserFactory(username=username, roles=list(roles), tenants=tenants, **kwargs)


@pytest.fixture
def tenant(db):
    return _tenant("own")


@pytest.fixture
def other_tenant(db):
    return _tenant("other")


@pytest.fixture
def make_user(db, tenant):
    def make(username: str, roles: list[str] | tuple[str, ...] = (), tenants=None, **kwargs):
        return _user(username, roles, tenants=[tenant] if tenants is None else tenants, **kwargs)

    return make


# Each role fixture's user: username, groups, and whose tenant ("other" for outsider).
ROLE_USERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "requester": ("requester", ("REQUESTER",), "own"),
    "engineer": ("engineer", ("ENGINEERING", "REQUESTER"), "own"),
    "operator": ("operator", ("OPERATIONS",), "own"),
    "security": ("security", ("SECURITY",), "own"),
    "compliance": ("compliance", ("COMPLIANCE",), "own"),
    "cto": ("cto", ("CTO",), "own"),
    "ciso": ("ciso", ("HEAD_OF_SECURITY",), "own"),
    # Holds every approver role but may only see another tenant.
    "outsider": ("outsider", ("REQUESTER", "ENGINEERING", "OPERATIONS", "SECURITY"), "other"),
}


def _role_user(make_user, role: str, other_tenant=None):
    username, roles, whose = ROLE_USERS[role]
    return make_user(username, roles, **({"tenants": [other_tenant]} if whose == "other" else {}))


@pytest.fixture
def requester(make_user):
    return _role_user(make_user, "requester")


@pytest.fixture
def engineer(make_user):
    return _role_user(make_user, "engineer")


@pytest.fixture
def operator(make_user):
    return _role_user(make_user, "operator")


@pytest.fixture
def security(make_user):
    return _role_user(make_user, "security")


@pytest.fixture
def compliance(make_user):
    return _role_user(make_user, "compliance")


@pytest.fixture
def cto(make_user):
    return _role_user(make_user, "cto")


@pytest.fixture
def ciso(make_user):
    return _role_user(make_user, "ciso")


@pytest.fixture
def outsider(make_user, other_tenant):
    """Holds every approver role but may only see another tenant."""
    return _role_user(make_user, "outsider", other_tenant)


@pytest.fixture
def superuser(make_user):
    return make_user("root", is_superuser=True, is_staff=True)


# --- rows made once for a whole module (the permission matrices) ----------------------


class ModuleRows:
    """An open transaction around a module's tests: rows made through ``make()`` exist
    for every test of the module; each test's own transaction is a savepoint inside it,
    rolled back after the test; the module's rows are rolled back when it ends. Django's
    ``setUpTestData`` for pytest: a matrix of 600 cases builds its people once, not 600
    times."""

    def __init__(self, blocker):
        self._blocker = blocker

    def make(self):
        return self._blocker.unblock()


@pytest.fixture(scope="module")
def module_rows(django_db_setup, django_db_blocker):
    from django.db import transaction

    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        # A flush by an earlier transactional test removed what migrations seeded.
        _seed_portal_defaults()
    try:
        yield ModuleRows(django_db_blocker)
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


class People:
    """The role users and both tenants, made once per module (``people.user(role)``),
    as the function-scoped fixtures make them."""

    def __init__(self):
        self.tenant, self.other_tenant = _tenant("own"), _tenant("other")
        tenants = {"own": self.tenant, "other": self.other_tenant}
        self._users = {
            role: _user(username, roles, tenants=[tenants[whose]])
            for role, (username, roles, whose) in ROLE_USERS.items()
        }
        self._users["superuser"] = self.make_user("root", is_superuser=True, is_staff=True)

    def user(self, role: str):
        """``None`` for "anonymous"."""
        return None if role == "anonymous" else self._users[role]

    def make_user(self, username: str, roles=(), tenants=None, **kwargs):
        return _user(
            username, roles, tenants=[self.tenant] if tenants is None else tenants, **kwargs
        )


@pytest.fixture(scope="module")
def people(module_rows) -> People:
    with module_rows.make():
        return People()


# --- a real Celery worker on the real Redis broker --------------------------------


@pytest.fixture
def celery_worker(transactional_db):
    """A real worker consuming from Redis in this process (threads pool)."""
    from celery.contrib.testing.worker import start_worker

    from portal import registry
    from portal.celery import app

    app.loader.import_default_modules()
    # Messages left by earlier tests name rows that a flush has since removed.
    app.control.purge()
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=20.0,
        # As runportal's worker: the default queue and every database target's queue.
        queues=registry.worker_queues(app.conf.task_default_queue),
    ) as worker:
        yield worker


# --- a real browser: Debian's Chromium driven by Playwright -------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM) and not shutil.which("chromium"):
        pytest.fail(
            f"Chromium is required at {CHROMIUM} for browser tests: "
            "apt-get install -y chromium (never `playwright install`)."
        )
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


# --- defaults that data migrations create (transactional tests flush them away) ------


@pytest.fixture(autouse=True)
def _portal_defaults(request):
    """Put back the role groups and default policy that a previous flush removed."""
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or bool(
        names & {"transactional_db", "live_server", "celery_worker"}
    )
    if transactional:
        request.getfixturevalue("transactional_db")
    elif marker is not None or "db" in names:
        request.getfixturevalue("db")
    else:
        return
    _seed_portal_defaults()


def _seed_portal_defaults() -> None:
    from django.apps import apps

    from changes import defaults as change_defaults
    from maintenance import defaults as maintenance_defaults
    from portal import defaults as portal_defaults

    if portal_defaults.roles_missing(apps):
        portal_defaults.seed_roles(apps)
    if change_defaults.missing(apps):
        change_defaults.seed(apps)
    if maintenance_defaults.missing(apps):
        maintenance_defaults.seed(apps)


# --- no database connection outlives the test database ------------------------------


@pytest.fixture(autouse=True)
def _browser_tests_release_db_connections():
    """Playwright's sync API leaves its event loop marked as running in the test's thread
    between calls (wait_for_future in playwright/_impl/_greenlets.py). Django keeps
    database connections in a thread-critical asgiref Local whose storage is different
    while a loop runs, so once a browser started, tests use a second set of connections
    and the first set stays open: the test database cannot be dropped at the end of the
    session ("being accessed by other users"). After a browser test, close both sets;
    the mark must stay, the suspended event loop needs it."""
    yield
    import asyncio

    loop = asyncio._get_running_loop()
    if loop is None:
        return  # no browser in this thread: the usual thread-local connections
    from django.db import connections

    def close_idle() -> None:
        for conn in connections.all(initialized_only=True):
            if not conn.in_atomic_block:
                conn.close()

    close_idle()
    asyncio._set_running_loop(None)
    try:
        close_idle()
    finally:
        asyncio._set_running_loop(loop)
