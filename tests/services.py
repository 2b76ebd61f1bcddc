"""Throwaway PostgreSQL clusters and private Redis servers for tests.

Tests that change a server's configuration (ALTER SYSTEM, restarts, preloads) or that
stop a broker for an outage drill must never do it to the shared services; they start
their own from the installed binaries, on a free 127.0.0.1 port, and remove them after.
The test session itself uses the same classes when DATABASE_URL / REDIS_URL are not
given (``tests/plugins/services.py``).

PostgreSQL
----------
``PgCluster(settings=None, *, command_line=None, preload="pg_stat_statements", port=None)``

- ``start()`` runs ``initdb -A trust -U postgres`` on the first call (a copy of a
  per-process template after the first cluster, ~0.1 s instead of ~0.7 s), then
  ``pg_ctl start``. Returns the cluster, so ``PgCluster().start()`` reads naturally.
- ``stop(mode="fast")``, ``restart()``, ``reload()``, ``running``.
- ``url(dbname="postgres")`` -> ``postgres://postgres@127.0.0.1:<port>/<dbname>``;
  ``connect(dbname="postgres", autocommit=True)`` -> a psycopg connection (TCP, trust);
  ``create_database(name)``; ``log()`` -> the server log's text.
- ``data_dir``, ``socket_dir``, ``port``, ``host`` ("127.0.0.1"), ``user`` ("postgres").
- ``remove()`` stops the server (immediately) and deletes every file; ``with PgCluster()
  as cluster:`` starts and removes. Clusters left behind are removed at interpreter exit,
  and, if the process is killed, by a small reaper process that outlives it.

``settings`` (name -> value) are written to ``postgresql.conf``, so ALTER SYSTEM still
overrides them exactly as on a real server (``pg_settings.source`` says "configuration
file"); ``command_line`` settings are passed as ``-c name=value`` and beat ALTER SYSTEM.
Defaults: ``listen_addresses='127.0.0.1'``, the port, ``unix_socket_directories`` (a
directory of the cluster's own), ``shared_preload_libraries`` from ``preload`` (None or
"" for none), ``max_connections=100``, and for speed ``fsync``, ``synchronous_commit``
and ``full_page_writes`` off (a throwaway cluster never needs to survive a power cut).
Run as root, initdb/pg_ctl/postgres run as the ``postgres`` user (they refuse root).

Redis
-----
``RedisServer(*, port=None)``: a non-persistent ``redis-server`` (``--save ""
--appendonly no``, bound to 127.0.0.1, not daemonized).

- ``start()``, ``stop()`` (the process ends and its data is gone; ``start()`` again
  comes back on the SAME port, empty, as a restarted non-persistent Redis does),
  ``running``, ``url(db=0)``, ``port``, ``remove()``, and ``with RedisServer() as r:``.

Pytest fixtures (from the ``tests.plugins.services`` plugin, on for the whole suite)
----------------------------------------------------------------------------------
- ``throwaway_cluster``: a started ``PgCluster`` with the defaults, removed after the test.
- ``pg_cluster_factory``: ``pg_cluster_factory(settings=..., command_line=..., preload=...)``
  returns a started ``PgCluster``; every one made is removed after the test.
- ``private_redis``: a started ``RedisServer``, removed after the test.

Binaries are found through ``PORTAL_PG_BINDIR``, ``pg_config --bindir``, the newest
``/usr/lib/postgresql/*/bin`` or ``PATH``; ``missing_binaries()`` names what is absent.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT = 60


class ServiceError(RuntimeError):
    """A throwaway service could not be started or stopped; the message says why."""


# --- finding the binaries ----------------------------------------------------------


def pg_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    if os.environ.get("PORTAL_PG_BINDIR"):
        # Named explicitly: that directory or nothing.
        candidates = [Path(os.environ["PORTAL_PG_BINDIR"])]
    else:
        candidates = _pg_bindir_candidates()
    for path in candidates:
        if all((path / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return path
    return None


def _pg_bindir_candidates() -> list[Path]:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if version(p)]
    candidates.extend(sorted(debian, key=version, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    return candidates


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def _run_as_user() -> pwd.struct_passwd | None:
    """initdb and postgres refuse to run as root: then they run as this user."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("PORTAL_PG_OS_USER"), "postgres", "nobody"):
        if name:
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
    raise ServiceError("running as root, and there is no 'postgres' user to run PostgreSQL as")


def missing_binaries(*, postgres: bool = True, redis: bool = True) -> list[str]:
    """What the throwaway services need and this machine lacks, one sentence each."""
    problems: list[str] = []
    if postgres:
        bindir = pg_bindir()
        if bindir is None:
            problems.append(
                "PostgreSQL's initdb, pg_ctl and postgres were not found (looked in "
                "PORTAL_PG_BINDIR, `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH): "
                "apt-get install -y postgresql, or set DATABASE_URL to a server"
            )
        else:
            sharedir = _pg_sharedir(bindir)
            control = sharedir / "extension" / "pg_stat_statements.control"
            if sharedir and not control.exists():
                problems.append(
                    f"pg_stat_statements is not installed ({control} is missing): "
                    "apt-get install -y postgresql-contrib"
                )
        try:
            _run_as_user()
        except ServiceError as exc:
            problems.append(str(exc))
    if redis and redis_server_binary() is None:
        problems.append(
            "redis-server was not found on PATH: apt-get install -y redis-server, "
            "or set REDIS_URL to a server"
        )
    return problems


def _pg_sharedir(bindir: Path) -> Path:
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [str(pg_config), "--sharedir"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            return Path(out.stdout.strip())
    return Path("/usr/share/postgresql") / bindir.parent.name


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


# --- the reaper: removes what a killed process left behind -------------------------


class _Reaper:
    """One helper process per test process, told over a pipe what to clean up.

    When this process ends in any way, even by SIGKILL, the pipe closes and the reaper
    kills the servers still tracked and deletes their directories. Normal removal
    untracks them first, so after a clean run it has nothing to do.
    """

    _lock = threading.Lock()
    _proc: subprocess.Popen | None = None
    _pid: int | None = None

    @classmethod
    def _send(cls, message: dict[str, Any]) -> None:
        with cls._lock:
            if cls._proc is None or cls._pid != os.getpid() or cls._proc.poll() is not None:
                cls._proc = subprocess.Popen(
                    [sys.executable, "-I", str(Path(__file__).resolve()), "--reaper"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    # Its own session: a Ctrl-C to the test run must not end it first.
                    start_new_session=True,
                )
                cls._pid = os.getpid()
            assert cls._proc.stdin is not None
            cls._proc.stdin.write((json.dumps(message) + "\n").encode())
            cls._proc.stdin.flush()

    @classmethod
    def track(cls, root: Path, pidfile: Path | None = None, program: str = "") -> None:
        cls._send(
            {"op": "track", "root": str(root), "pidfile": str(pidfile or ""), "program": program}
        )

    @classmethod
    def untrack(cls, root: Path) -> None:
        cls._send({"op": "untrack", "root": str(root)})


def _reaper_main() -> None:
    tracked: dict[str, dict[str, str]] = {}
    for line in sys.stdin:
        message = json.loads(line)
        if message["op"] == "track":
            tracked[message["root"]] = message
        else:
            tracked.pop(message["root"], None)
    for entry in tracked.values():
        if entry["pidfile"]:
            _kill_from_pidfile(Path(entry["pidfile"]), entry["program"])
        shutil.rmtree(entry["root"], ignore_errors=True)


def _kill_from_pidfile(pidfile: Path, program: str, timeout: float = 15) -> None:
    try:
        pid = int(pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if program.encode() not in cmdline:
        return  # the pid was reused by something else
    # SIGQUIT is PostgreSQL's immediate shutdown (the postmaster ends its backends too).
    # A non-persistent Redis has nothing to lose, and may ignore SIGQUIT: a background
    # job of a non-interactive shell inherits SIGQUIT ignored, and Redis keeps that.
    signals = [signal.SIGQUIT, signal.SIGKILL] if program == "postgres" else [signal.SIGKILL]
    for sig in signals:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _process_alive(pid):
            time.sleep(0.05)
        if not _process_alive(pid):
            return


def _process_alive(pid: int) -> bool:
    # A server whose parent died is reparented to a PID 1 that may never reap it: an
    # exited one can stay a zombie ("Z") in /proc for good.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


# --- common life cycle ---------------------------------------------------------------

_alive: set[_Service] = set()


@atexit.register
def _remove_all() -> None:
    for service in list(_alive):
        with contextlib.suppress(Exception):
            service.remove()


class _Service:
    program = ""
    pidfile: Path

    def __init__(self, prefix: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self._removed = False
        _alive.add(self)

    def _track(self) -> None:
        _Reaper.track(self.root, self.pidfile, self.program)

    def remove(self) -> None:
        """Stop the server if it runs and delete all its files."""
        if self._removed:
            return
        try:
            self._stop_for_removal()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self._removed = True
            _alive.discard(self)
            with contextlib.suppress(Exception):
                _Reaper.untrack(self.root)

    def _stop_for_removal(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def start(self):
        raise NotImplementedError


# --- PostgreSQL --------------------------------------------------------------------

_templates: dict[str, Path] = {}
_template_lock = threading.Lock()
_template_root: Path | None = None


def _quote_conf(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class PgCluster(_Service):
    program = "postgres"
    user = "postgres"
    host = HOST

    def __init__(
        self,
        settings: Mapping[str, object] | None = None,
        *,
        command_line: Mapping[str, object] | None = None,
        preload: str | None = "pg_stat_statements",
        port: int | None = None,
    ) -> None:
        self.bindir = pg_bindir()
        if self.bindir is None:
            raise ServiceError("; ".join(missing_binaries(redis=False)))
        self._os_user = _run_as_user()
        super().__init__("pgcluster-")
        self._choose_port = port is None
        self.port = port or free_port()
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_file = self.root / "server.log"
        self.pidfile = self.data_dir / "postmaster.pid"
        self.settings: dict[str, object] = {
            "listen_addresses": HOST,
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": 100,
            "fsync": False,
            "synchronous_commit": False,
            "full_page_writes": False,
        }
        if preload:
            self.settings["shared_preload_libraries"] = preload
        self.settings.update(settings or {})
        self.command_line = dict(command_line or {})
        self._initialised = False
        self._started_once = False
        self.socket_dir.mkdir()
        self._chown(self.root)
        self._chown(self.socket_dir)
        self.root.chmod(0o700)

    # -- running the binaries as the right user

    def _chown(self, path: Path) -> None:
        if self._os_user is not None:
            os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)

    def _run(self, *args: str, check: bool = True, timeout: float = START_TIMEOUT + 10):
        kwargs: dict[str, Any] = {}
        if self._os_user is not None:
            kwargs.update(user=self._os_user.pw_uid, group=self._os_user.pw_gid, extra_groups=[])
        result = subprocess.run(
            list(args),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C.UTF-8", "PGDATA": str(self.data_dir)},
            **kwargs,
        )
        if check and result.returncode != 0:
            raise ServiceError(
                f"{Path(args[0]).name} {' '.join(args[1:3])} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{self.log()[-3000:]}"
            )
        return result

    def _bin(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    # -- initdb, once per process; later clusters copy the template

    def _initdb(self) -> None:
        global _template_root
        flags = ["-A", "trust", "-U", self.user, "-E", "UTF8", "--locale=C.UTF-8"]
        key = " ".join([str(self.bindir), *flags, str(self._os_user and self._os_user.pw_uid)])
        with _template_lock:
            template = _templates.get(key)
            if template is None or not template.exists():
                if _template_root is None or not _template_root.exists():
                    _template_root = Path(tempfile.mkdtemp(prefix="pgcluster-templates-"))
                    self._chown(_template_root)
                    atexit.register(shutil.rmtree, _template_root, True)
                    _Reaper.track(_template_root)
                template = _template_root / f"t{len(_templates)}"
                self._run(
                    self._bin("initdb"),
                    "-D",
                    str(template),
                    *flags,
                    "--no-sync",
                    "--no-instructions",
                )
                _templates[key] = template
        self._run("cp", "-a", str(template), str(self.data_dir))
        self._initialised = True
        self._write_conf()

    def _write_conf(self) -> None:
        lines = [f"{name} = {_quote_conf(value)}" for name, value in self.settings.items()]
        lines.append(f"port = {self.port}")
        conf = self.data_dir / "postgresql.conf"
        base = conf.read_text().split("\n# --- throwaway cluster ---\n")[0]
        conf.write_text(base + "\n# --- throwaway cluster ---\n" + "\n".join(lines) + "\n")

    def _options(self) -> list[str]:
        if not self.command_line:
            return []
        flags = " ".join(
            f"-c {shlex.quote(f'{name}={value}')}" for name, value in self.command_line.items()
        )
        return ["-o", flags]

    # -- life cycle

    @property
    def running(self) -> bool:
        if not self.pidfile.exists():
            return False
        status = self._run(self._bin("pg_ctl"), "status", "-D", str(self.data_dir), check=False)
        return status.returncode == 0

    def start(self) -> PgCluster:
        if self._removed:
            raise ServiceError("this cluster was removed")
        if not self._initialised:
            self._initdb()
            self._track()
        for attempt in range(3):
            result = self._pg_ctl_start()
            if result.returncode == 0:
                self._started_once = True
                return self
            busy = "could not bind" in self.log() or "already in use" in self.log()
            if not (busy and self._choose_port and not self._started_once and attempt < 2):
                raise ServiceError(
                    f"PostgreSQL did not start on port {self.port}:\n{result.stdout}"
                    f"{result.stderr}\n{self.log()[-3000:]}"
                )
            # Another process took the free port between our choice and the bind.
            self.port = free_port()
            self._write_conf()
        raise AssertionError("unreachable")

    def _pg_ctl_start(self):
        return self._run(
            self._bin("pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(START_TIMEOUT),
            *self._options(),
            check=False,
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(self._bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w")

    def restart(self) -> None:
        self._run(
            self._bin("pg_ctl"),
            "restart",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-m",
            "fast",
            "-w",
            "-t",
            str(START_TIMEOUT),
            *self._options(),
        )

    def reload(self) -> None:
        self._run(self._bin("pg_ctl"), "reload", "-D", str(self.data_dir))

    def _stop_for_removal(self) -> None:
        if self.pidfile.exists():
            result = self._run(
                self._bin("pg_ctl"),
                "stop",
                "-D",
                str(self.data_dir),
                "-m",
                "immediate",
                "-w",
                check=False,
            )
            if result.returncode != 0:
                _kill_from_pidfile(self.pidfile, self.program)

    # -- using it

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", *, autocommit: bool = True):
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=dbname,
            autocommit=autocommit,
            connect_timeout=10,
        )

    def create_database(self, name: str) -> str:
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def __repr__(self) -> str:
        return f"<PgCluster {self.url()} data={self.data_dir}>"


# --- Redis ---------------------------------------------------------------------------


class RedisServer(_Service):
    program = "redis-server"
    host = HOST

    def __init__(self, *, port: int | None = None) -> None:
        self.binary = redis_server_binary()
        if self.binary is None:
            raise ServiceError("; ".join(missing_binaries(postgres=False)))
        super().__init__("redis-")
        self._choose_port = port is None
        self.port = port or free_port()
        self.pidfile = self.root / "redis.pid"
        self.log_file = self.root / "redis.log"
        self._proc: subprocess.Popen | None = None
        self._started_once = False
        self._track()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> RedisServer:
        if self._removed:
            raise ServiceError("this server was removed")
        if self.running:
            return self
        for attempt in range(3):
            self._proc = subprocess.Popen(
                [
                    str(self.binary),
                    "--port",
                    str(self.port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self.root),
                    "--pidfile",
                    str(self.pidfile),
                    "--logfile",
                    str(self.log_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.root,
            )
            if self._wait_until_ready():
                self._started_once = True
                return self
            log = self.log()
            self._kill()
            if (
                not (
                    "Address already in use" in log and self._choose_port and not self._started_once
                )
                or attempt == 2
            ):
                raise ServiceError(f"redis-server did not start on port {self.port}:\n{log}")
            self.port = free_port()
        raise AssertionError("unreachable")

    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                with socket.create_connection((HOST, self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    # Its pid file too: Redis may answer before writing it, and the
                    # reaper finds the server to kill by it.
                    if sock.recv(64).startswith(b"+PONG") and self._pid_written():
                        return True
            time.sleep(0.02)
        return False

    def _pid_written(self) -> bool:
        try:
            return self.pidfile.read_text().endswith("\n")
        except OSError:
            return False

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def stop(self) -> None:
        """End the server: its data is gone, and start() brings it back on the same port."""
        self._kill()
        # A port that still answered would let a client think the outage was over.
        deadline = time.monotonic() + 10
        while _port_answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _stop_for_removal(self) -> None:
        self._kill()

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def __repr__(self) -> str:
        return f"<RedisServer {self.url()}>"


if __name__ == "__main__" and sys.argv[1:] == ["--reaper"]:
    _reaper_main()
