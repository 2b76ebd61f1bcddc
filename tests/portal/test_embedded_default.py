"""The one-command demo: SQLite and the file-system broker, with real processes.

Everything here runs as the user would run it: manage.py, gunicorn and a Celery worker
as subprocesses of a fresh environment that names no external service at all.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.xdist_group("embedded_demo")

BASE_DIR = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
DEMO_PASSWORD = "demo-password-for-the-suite"
DEADLINE = 30.0


def wait_for(probe: Callable[[], Any], *, what: str, timeout: float = DEADLINE, procs=()) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"{what}: {proc.args[0]} exited with {proc.returncode}")
        result = probe()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 10):
    assert url.startswith("http://127.0.0.1:")
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (our own server)


class Demo:
    def __init__(self, var_dir: Path, workdir: Path) -> None:
        self.var_dir = var_dir
        # Processes start in an empty directory: nothing may land outside PORTAL_VAR_DIR.
        self.workdir = workdir
        self.database = var_dir / "portal.sqlite3"
        passthrough = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
        self.env = {k: v for k, v in os.environ.items() if k in passthrough}
        self.env.update(
            {
                "DATABASE_URL": f"sqlite:///{self.database}",
                "CELERY_BROKER_URL": "filesystem://",
                "PORTAL_VAR_DIR": str(var_dir),
                "PORTAL_ENV": "development",
                "DEMO_PASSWORD": DEMO_PASSWORD,
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": str(BASE_DIR),
            }
        )

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stderr}"
        return result

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        # A session of its own, so stopping it also stops the worker's pool children.
        with open(self.var_dir / f"{name}.log", "wb") as log:
            return subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self, name: str) -> str:
        path = self.var_dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        uri = f"file:{self.database}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
            return conn.execute(sql, params).fetchall()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, copy_migrated_sqlite) -> Demo:
    demo = Demo(tmp_path_factory.mktemp("demo-var"), tmp_path_factory.mktemp("demo-cwd"))
    # The session's migrated file (its migrate ran as `make run`'s does); migrate again,
    # as `make run` does on every start, finds nothing left to apply.
    copy_migrated_sqlite(demo.database)
    assert "No migrations to apply." in demo.manage("migrate", "--noinput").stdout
    demo.manage("seed_demo")
    return demo


@pytest.fixture(scope="module")
def web(demo) -> Iterator[str]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    proc = demo.start(
        "gunicorn",
        [
            str(BIN_DIR / "gunicorn"),
            *("portal.wsgi:application", "--bind", f"127.0.0.1:{port}"),
            *("--workers", "2", "--threads", "4", "--graceful-timeout", "5"),
        ],
    )
    try:

        def answers() -> bool:
            try:
                with get(f"{base_url}/accounts/login/", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        try:
            wait_for(answers, what="gunicorn serving the sign-in page", procs=[proc])
        except BaseException:
            print(demo.log("gunicorn"))
            raise
        yield base_url
    finally:
        stop(proc)


def browser() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))


def sign_in(opener, base_url: str, username: str, password: str) -> tuple[str, str]:
    with opener.open(f"{base_url}/accounts/login/", timeout=10) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "the sign-in form carries no CSRF token"
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password}
    ).encode()
    with opener.open(f"{base_url}/accounts/login/", data=form, timeout=10) as response:
        return response.url, response.read().decode()


# --- migrate and seed -----------------------------------------------------------------


def test_the_demo_seed_can_run_again_without_duplicating_anything(demo):
    counts = "SELECT (SELECT count(*) FROM auth_user), (SELECT count(*) FROM portal_tenant), "
    counts += "(SELECT count(*) FROM portal_service), (SELECT count(*) FROM portal_component), "
    counts += "(SELECT count(*) FROM portal_auditevent WHERE action = 'user.seeded')"
    before = demo.query(counts)

    result = demo.manage("seed_demo")

    assert "Demo data ready." in result.stdout
    assert f"Demo password (from DEMO_PASSWORD): {DEMO_PASSWORD}" in result.stdout
    assert demo.query(counts) == before == [(8, 3, 3, 6, 8)]
    roles = demo.query(
        "SELECT g.name FROM auth_user u JOIN auth_user_groups ug ON ug.user_id = u.id "
        "JOIN auth_group g ON g.id = ug.group_id WHERE u.username = 'compliance'"
    )
    assert roles == [("COMPLIANCE",)]
    assert "Audit chain intact" in demo.manage("verify_audit_chain").stdout


# --- the web server -------------------------------------------------------------------


def test_the_demo_serves_the_sign_in_page(web):
    with get(f"{web}/accounts/login/") as response:
        page = response.read().decode()
        headers = response.headers

    assert "<h1>Sign in</h1>" in page
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    with get(f"{web}/static/js/htmx.min.js") as response:
        assert response.status == 200


def test_a_demo_user_signs_in_and_sees_my_work(web):
    url, page = sign_in(browser(), web, "requester", DEMO_PASSWORD)

    assert url == f"{web}/"
    assert "<h1>My work</h1>" in page
    assert "requester" in page


def test_a_wrong_demo_password_is_refused(web):
    url, page = sign_in(browser(), web, "engineer", "not-the-demo-password")

    assert url == f"{web}/accounts/login/"
    assert "Please enter a correct username and password" in html.unescape(page)


# --- the worker on the file-system broker -------------------------------------------


def test_the_demo_worker_runs_a_task_from_the_file_system_broker(demo, web):
    worker = demo.start(
        "worker",
        [
            *(sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel", "INFO"),
            *("--concurrency", "1", "--hostname", f"demo-{uuid.uuid4().hex[:8]}@%h"),
        ],
    )
    try:
        token = uuid.uuid4().hex
        demo.manage(
            "shell",
            "--no-imports",
            "-c",
            "from django.db import transaction\n"
            "from portal.outbox import outbox_enqueue\n"
            "with transaction.atomic():\n"
            f"    outbox_enqueue(task_name='portal.worker_ping', args=['{token}'])\n",
        )
        published = demo.query(
            "SELECT published_at FROM portal_outboxmessage WHERE args = ?", (json.dumps([token]),)
        )
        assert published and published[0][0] is not None, "the outbox did not publish the task"

        def ran() -> bool:
            rows = demo.query(
                "SELECT count(*) FROM portal_auditevent "
                "WHERE action = 'worker.ping' AND object_id = ?",
                (token,),
            )
            return rows[0][0] == 1

        def healthy() -> dict | None:
            try:
                with get(f"{web}/healthz") as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError:
                return None

        try:
            wait_for(ran, what="the worker running portal.worker_ping", procs=[worker])
            report = wait_for(healthy, what="/healthz reporting ok", procs=[worker])
        except BaseException:
            print(demo.log("worker"))
            raise
        assert report["database"] == {"ok": True, "vendor": "sqlite"}
        assert "filesystem" in report["broker"]["transport"]
        assert report["worker"]["ok"] is True
    finally:
        stop(worker)
    assert (demo.var_dir / "broker" / "control").is_dir()
    assert list(demo.workdir.iterdir()) == [], "the demo wrote outside PORTAL_VAR_DIR"
