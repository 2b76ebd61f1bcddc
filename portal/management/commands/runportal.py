"""Run the web server, a Celery worker and beat together, and keep them running.

A child that exits on its own (crashed, killed, or even stopped cleanly) is logged and
started again after a back-off; only Ctrl-C or SIGTERM to ``runportal`` stops them all.
A stop gives the worker ``RUNPORTAL_STOP_GRACE_SECONDS`` to finish its tasks (Celery's
warm shutdown), then asks for a cold shutdown (SIGQUIT: Celery 5 ignores a second
SIGTERM), then kills what is left of each child's process group.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.base import BaseCommand

from portal import registry
from portal.celery import app as celery_app

logger = logging.getLogger("portal.runportal")

# A child that ran this long before exiting is started again at once.
STABLE_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 30.0
# Web and beat stop in a few seconds; this bounds them if they do not.
WEB_BEAT_STOP_SECONDS = 10.0
POLL_SECONDS = 0.2


def portal_commands(*, bind: str, sqlite: bool) -> dict[str, list[str]]:
    """The three children's command lines (the drills start the same ones)."""
    python = sys.executable
    bindir = os.path.dirname(python)
    # SQLite has one writer at a time: one worker process keeps the demo calm.
    concurrency = "1" if sqlite else "2"
    return {
        "web": [
            os.path.join(bindir, "gunicorn"),
            "portal.wsgi:application",
            "--bind",
            bind,
            "--workers",
            "2",
            "--threads",
            "4",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "5",
            # Browsers keep a connection open between loading a page and the click on
            # it; gunicorn's 2 s default closed it under them, and a click sent as it
            # closed was reset unanswered. Longer than a load balancer's usual 60 s.
            "--keep-alive",
            str(settings.WEB_KEEPALIVE_SECONDS),
        ],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            concurrency,
            # Every queue: the default one and each database target's (a deployment may
            # instead run a worker per queue, ``-Q dbops.target.3``).
            "--queues",
            ",".join(registry.worker_queues(celery_app.conf.task_default_queue)),
            "--hostname",
            "portal-worker@%h",
        ],
        "beat": [
            python,
            "-m",
            "celery",
            "-A",
            "portal",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(settings.VAR_DIR / "celerybeat-schedule"),
        ],
    }


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM should runportal itself be killed."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class Child:
    name: str
    command: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_exits: int = 0
    restart_at: float | None = None
    groups: list[int] = field(default_factory=list)

    def start(self) -> None:
        # A session of its own: Ctrl-C reaches runportal once, and we stop the children
        # in order; the group id lets us end a child's helpers (pool processes) with it.
        self.proc = subprocess.Popen(
            self.command, start_new_session=True, preexec_fn=_die_with_parent
        )
        self.groups.append(self.proc.pid)
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def base_url_for_bind(bind: str) -> str | None:
    """PORTAL_BASE_URL for gunicorn's ``--bind`` (HOST, HOST:PORT, [IPv6]:PORT); None for
    unix: and fd:// binds. A wildcard address is reached on this host as loopback."""
    if bind.startswith(("unix:", "fd://")):
        return None
    host, port = (bind, "8000") if bind.endswith("]") or ":" not in bind else bind.rsplit(":", 1)
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)  # noqa: S104
    return f"http://{host}:{port}"


class Command(BaseCommand):
    help = "Start web (gunicorn), Celery worker and beat; restart any that exits; Ctrl-C stops all."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument(
            "--grace",
            type=float,
            default=None,
            help="seconds the worker may take to finish its tasks on stop "
            "(default RUNPORTAL_STOP_GRACE_SECONDS)",
        )

    def handle(self, *args, bind: str, grace: float | None, **options) -> None:
        grace = settings.RUNPORTAL_STOP_GRACE_SECONDS if grace is None else grace
        # The children inherit it: e-mail links then name the address we serve on.
        if not os.environ.get("PORTAL_BASE_URL") and (base_url := base_url_for_bind(bind)):
            os.environ["PORTAL_BASE_URL"] = base_url
        sqlite = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
        children = [
            Child(name, cmd) for name, cmd in portal_commands(bind=bind, sqlite=sqlite).items()
        ]
        stop_signal: list[int] = []

        def request_stop(signum, _frame) -> None:
            stop_signal.append(signum)

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        for child in children:
            child.start()
        self.stdout.write(
            self.style.SUCCESS(
                f"\nPortal running at http://{bind}/ (web, worker, beat; Ctrl-C stops all)\n"
            )
        )
        self.stdout.flush()
        try:
            while not stop_signal:
                self._supervise(children)
                time.sleep(POLL_SECONDS)
        finally:
            self._stop_all(children, grace=grace, signals=stop_signal)
        self.stdout.write("Stopped web, worker and beat.")

    # --- keeping them running ---------------------------------------------------------

    def _supervise(self, children: list[Child]) -> None:
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    logger.warning(
                        "runportal: starting %s again (restart %d)", child.name, child.restarts
                    )
                    child.start()
                continue
            if child.running:
                continue
            assert child.proc is not None
            ran = now - child.started_at
            # Back off 1, 2, 4 ... 30 s while it keeps failing fast; a long run resets it.
            child.quick_exits = 0 if ran >= STABLE_SECONDS else child.quick_exits + 1
            delay = min(MAX_BACKOFF_SECONDS, 2.0**child.quick_exits)
            # Its pool processes or helpers must not outlive it.
            _signal_group(child.proc.pid, signal.SIGKILL)
            logger.error(
                "runportal: %s exited unexpectedly (%s) after %.1f s; restarting it in %.0f s",
                child.name,
                _describe(child.proc.returncode),
                ran,
                delay,
            )
            child.restart_at = now + delay

    # --- stopping them all ---------------------------------------------------------------

    def _stop_all(self, children: list[Child], *, grace: float, signals: list[int]) -> None:
        live = [child for child in children if child.running]
        logger.warning(
            "runportal: stopping %s (the worker has %.0f s to finish its tasks)",
            ", ".join(child.name for child in live) or "nothing",
            grace,
        )
        for child in live:
            child.proc.send_signal(signal.SIGTERM)  # gunicorn, celery: a graceful stop
        started = time.monotonic()
        cold = settings.RUNPORTAL_COLD_STOP_SECONDS
        kill_after = {
            child.name: grace + cold if child.name == "worker" else WEB_BEAT_STOP_SECONDS
            for child in children
        }
        asked = len(signals)
        cold_sent = False
        while any(child.running for child in children):
            elapsed = time.monotonic() - started
            for child in children:
                if not child.running:
                    continue
                # A second Ctrl-C cuts the grace period short.
                hurry = len(signals) > asked
                if child.name == "worker" and not cold_sent and (elapsed >= grace or hurry):
                    logger.warning("runportal: the worker is still busy; cold shutdown")
                    child.proc.send_signal(signal.SIGQUIT)
                    cold_sent = True
                    kill_after["worker"] = min(kill_after["worker"], elapsed + cold)
                if elapsed >= kill_after[child.name]:
                    logger.error("runportal: %s did not stop in time; killing it", child.name)
                    _signal_group(child.proc.pid, signal.SIGKILL)
            time.sleep(POLL_SECONDS)
        # Nothing a child started in its group may outlive runportal.
        for child in children:
            for pgid in child.groups:
                if _group_alive(pgid):
                    logger.error(
                        "runportal: killing what is left of %s (group %d)", child.name, pgid
                    )
                    _signal_group(pgid, signal.SIGKILL)
            if child.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(timeout=5)
