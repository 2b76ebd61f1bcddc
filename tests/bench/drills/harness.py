"""What every fault drill needs: the portal's own processes, and clients that sign in.

The web server and the worker are started with the command lines ``runportal`` uses
(``portal_commands``), as subprocesses of an environment that names the database and
broker under test. Clients speak HTTP to the real gunicorn like a browser does: a
session cookie, the CSRF token from the page's form, no redirects followed (the answer
to a POST is what is measured).
"""

from __future__ import annotations

import contextlib
import email
import email.header
import html
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[3]
HOST = "127.0.0.1"
PASSTHROUGH = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"}
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class DrillError(AssertionError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for(
    probe: Callable[[], Any], *, what: str, timeout: float = 60.0, procs=(), interval=0.1
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise DrillError(f"{what}: {proc.args[0]} exited with {proc.returncode}")
        result = probe()
        if result:
            return result
        time.sleep(interval)
    raise DrillError(f"{what} did not happen within {timeout:.0f} s")


def portal_env(*, database_url: str, broker_url: str, var_dir: Path, **extra: str) -> dict:
    """The environment of a portal process: only what it is given, nothing inherited."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k in PASSTHROUGH}
    env.update(
        {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "REDIS_URL": broker_url if broker_url.startswith("redis") else "",
            "PORTAL_ENV": "test",
            "PORTAL_VAR_DIR": str(var_dir),
            # Shared with the process that seeds sessions, so the session hashes agree.
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(var_dir / "mail"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(BASE_DIR),
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


class Processes:
    """Started subprocesses, each in a session of its own, with its log in var_dir."""

    def __init__(self, env: dict, var_dir: Path) -> None:
        self.env = env
        self.var_dir = var_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.var_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept by the child)
        proc = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str, tail: int = 6000) -> str:
        path = self.var_dir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise DrillError(f"manage.py {' '.join(args)}:\n{result.stderr[-4000:]}")
        return result.stdout

    def python(self, code: str, timeout: float = 600) -> Any:
        """Run code in the portal's environment (Django set up); it prints one JSON value."""
        prelude = (
            "import django, json, os\n"
            "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'portal.settings')\n"
            "django.setup()\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", prelude + code],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise DrillError(f"seeding failed:\n{result.stderr[-4000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def stop(self, name: str, *, timeout: float = 20) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def start_web(processes: Processes, *, port: int | None = None, sqlite: bool = False) -> str:
    from portal.management.commands.runportal import portal_commands

    port = port or free_port()
    command = portal_commands(bind=f"{HOST}:{port}", sqlite=sqlite)["web"]
    proc = processes.start("web", command)
    base_url = f"http://{HOST}:{port}"

    def answers() -> bool:
        try:
            return Client(base_url).get("/accounts/login/").status == 200
        except OSError:
            return False

    try:
        wait_for(answers, what="gunicorn serving the sign-in page", procs=[proc])
    except DrillError:
        print(processes.log("web"))
        raise
    return base_url


def start_worker(processes: Processes, *, sqlite: bool = False, hostname: str = "drill") -> None:
    from portal.management.commands.runportal import portal_commands

    command = portal_commands(bind=f"{HOST}:0", sqlite=sqlite)["worker"]
    command[command.index("--hostname") + 1] = f"{hostname}@%h"
    proc = processes.start("worker", command)

    def ready() -> bool:
        return "ready." in processes.log("worker", tail=200_000)

    try:
        wait_for(ready, what="the Celery worker ready", procs=[proc])
    except DrillError:
        print(processes.log("worker"))
        raise


def start_runportal(processes: Processes, *, port: int | None = None) -> str:
    """The whole portal as `make run` and a deployment start it: web, worker and beat
    under runportal's supervision (a worker that dies is started again)."""
    port = port or free_port()
    proc = processes.start(
        "runportal",
        [sys.executable, str(BASE_DIR / "manage.py"), "runportal", "--bind", f"{HOST}:{port}"],
    )
    base_url = f"http://{HOST}:{port}"

    def ready() -> bool:
        if "ready." not in processes.log("runportal", tail=200_000):
            return False
        try:
            return Client(base_url).get("/accounts/login/").status == 200
        except OSError:
            return False

    try:
        wait_for(ready, what="runportal's web and worker ready", procs=[proc])
    except DrillError:
        print(processes.log("runportal"))
        raise
    return base_url


# --- clients ---------------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer at all (reset, refused, timed out)
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""


class Client:
    """One browser: a cookie jar, and like a browser one kept-alive connection that it
    reuses for the next request (``keep_alive=False``: a new connection each time)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        keep_alive: bool = True,
        check_before_reuse: bool = True,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port = parsed.hostname, parsed.port
        self.timeout = timeout
        self.keep_alive = keep_alive
        # Browsers (and urllib3) do not send on a kept connection the server has closed
        # meanwhile; False sends anyway, as the simplest clients do.
        self.check_before_reuse = check_before_reuse
        self.cookies: dict[str, str] = {}
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _closed_by_server(self) -> bool:
        sock = self._conn.sock if self._conn is not None else None
        if sock is None:
            return False
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)  # an idle connection is readable only once closed

    def _request(self, method: str, path: str, body: bytes | None = None, headers=None) -> Answer:
        if self._conn is not None and self.check_before_reuse and self._closed_by_server():
            self.close()
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn = self._conn
        sent = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Answer(None, seconds=time.monotonic() - started, error=type(exc).__name__)
        elapsed = time.monotonic() - started
        if not self.keep_alive or response.will_close:
            self.close()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                cookie = value.split(";", 1)[0]
                key, _, val = cookie.partition("=")
                if val in ('""', ""):
                    self.cookies.pop(key.strip(), None)
                else:
                    self.cookies[key.strip()] = val
        return Answer(
            response.status, data, {k.lower(): v for k, v in response.getheaders()}, elapsed
        )

    def get(self, path: str) -> Answer:
        return self._request("GET", path)

    def post(self, path: str, data: dict[str, str], *, referer_path: str | None = None) -> Answer:
        body = urllib.parse.urlencode(data).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"http://{self.host}:{self.port}{referer_path or path}",
            "Origin": f"http://{self.host}:{self.port}",
        }
        return self._request("POST", path, body=body, headers=headers)

    def form_token(self, path: str) -> tuple[str, str]:
        """The page and the CSRF token of its (first) form, as a browser would post it."""
        answer = self.get(path)
        if answer.status != 200:
            raise DrillError(f"GET {path} answered {answer.status}: {answer.body[:500]}")
        match = CSRF_RE.search(answer.body)
        if not match:
            raise DrillError(f"{path} carries no CSRF token")
        return answer.body, html.unescape(match.group(1))

    def sign_in(self, username: str, password: str) -> None:
        _, token = self.form_token("/accounts/login/")
        answer = self.post(
            "/accounts/login/",
            {"csrfmiddlewaretoken": token, "username": username, "password": password},
        )
        if answer.status != 302:
            raise DrillError(f"signing in {username} answered {answer.status}")

    def use_session(self, session_key: str) -> None:
        self.cookies["sessionid"] = session_key


# --- tallies ---------------------------------------------------------------------------


@dataclass
class Tally:
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    @property
    def statuses(self) -> Counter:
        return Counter(a.status for a in self.answers)

    @property
    def server_errors(self) -> list[Answer]:
        return [a for a in self.answers if a.status is not None and a.status >= 500]

    @property
    def dropped(self) -> list[Answer]:
        return [a for a in self.answers if a.status is None]

    @property
    def slowest(self) -> float:
        return max((a.seconds for a in self.answers), default=0.0)

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.answers),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=str)},
            "dropped": len(self.dropped),
            "slowest_s": round(self.slowest, 3),
        }


def run_at_once(jobs: list[Callable[[], None]]) -> float:
    """Start every job in its own thread, released together; returns the wall time."""
    barrier = threading.Barrier(len(jobs) + 1)
    errors: list[BaseException] = []

    def wrap(job: Callable[[], None]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:  # reported after all threads finished
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    barrier.wait()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.monotonic() - started


@contextlib.contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Point this process's Celery app (its publishers: the outbox, the relay) elsewhere."""
    from django.conf import settings
    from kombu import pools

    from portal.celery import app

    saved = (os.environ.get("CELERY_BROKER_URL"), app.conf.broker_url, settings.CELERY_BROKER_URL)

    def forget_pools() -> None:
        # The app keeps one connection pool and one producer pool for the URL it first
        # published to; without them the next publish uses the current URL.
        # kombu keeps them in a registry of its own keyed by the broker's address: close
        # and forget them all there, or the app finds the closed pool again next time.
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    os.environ["CELERY_BROKER_URL"] = url  # Celery reads it before its configuration
    app.conf.broker_url = settings.CELERY_BROKER_URL = url
    forget_pools()
    try:
        yield
    finally:
        forget_pools()
        if saved[0] is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved[0]
        app.conf.broker_url, settings.CELERY_BROKER_URL = saved[1], saved[2]


@contextlib.contextmanager
def stopped_on_exit(processes: Processes) -> Iterator[Processes]:
    try:
        yield processes
    finally:
        processes.stop_all()


def mail_sent(mail_dir: Path) -> Counter:
    """(recipient, subject) of every e-mail the file-based backend wrote (it ends each
    message with a line of 79 dashes)."""
    sent: Counter = Counter()
    if not mail_dir.exists():
        return sent
    for path in mail_dir.iterdir():
        for chunk in path.read_text(errors="replace").split("-" * 79):
            if not chunk.strip():
                continue
            message = email.message_from_string(chunk.lstrip("\n"))
            subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
            sent[(message["To"], subject)] += 1
    return sent
