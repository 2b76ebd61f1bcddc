"""A portal at scale for the benchmarks: a throwaway PostgreSQL cluster and Redis, one
database per scale loaded by ``tests.bench.load``, and gunicorn serving it exactly as
``runportal`` does (2 workers x 4 threads), with the floor view's URL added
(``tests.bench.settings``). Nothing here touches a shared server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.drills.harness import BASE_DIR, Client, Processes, portal_env, start_web

# The cluster a modest production server would be: more cache than initdb's default.
CLUSTER_SETTINGS = {
    "shared_buffers": "512MB",
    "effective_cache_size": "2GB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
}


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


SESSIONS = """
from django.test import Client
from django.contrib.auth import get_user_model
out = {}
for name in NAMES:
    client = Client()
    client.force_login(get_user_model().objects.get(username=name),
                       backend="django.contrib.auth.backends.ModelBackend")
    out[name] = client.cookies["sessionid"].value
print(json.dumps(out))
"""


@dataclass
class Site:
    """One loaded database and the processes serving it."""

    cluster: Any
    redis: Any
    changes: int
    root: Path
    info: dict[str, Any] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    processes: Processes | None = None

    @property
    def dbname(self) -> str:
        return f"bench_{self.changes}"

    @property
    def database_url(self) -> str:
        return self.cluster.url(self.dbname)

    def env(self, **extra: str) -> dict:
        var_dir = self.root / self.dbname
        var_dir.mkdir(parents=True, exist_ok=True)
        return portal_env(
            database_url=self.database_url,
            broker_url=self.redis.url(0),
            var_dir=var_dir,
            DJANGO_SETTINGS_MODULE="tests.bench.settings",
            # A run lasts longer than the idle logoff; the sessions must outlive it.
            SESSION_IDLE_MINUTES="600",
            LOG_LEVEL="WARNING",
            **extra,
        )

    def load(self, log=print) -> dict[str, Any]:
        self.cluster.create_database(self.dbname)
        env = self.env()
        started = time.monotonic()
        self._run([sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput"], env)
        log(f"  migrated {self.dbname} in {time.monotonic() - started:.0f} s")
        out = self._run(
            [sys.executable, "-m", "tests.bench.load", "--changes", str(self.changes)], env
        )
        self.info = json.loads(out.strip().splitlines()[-1])
        log(
            f"  loaded {self.changes} changes in {self.info['load_seconds']} s: {self.info['rows']}"
        )
        return self.info

    def _run(self, command: list[str], env: dict, timeout: float = 3600) -> str:
        result = subprocess.run(
            command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:4])} failed:\n{result.stderr[-5000:]}")
        return result.stdout

    def serve(self) -> str:
        self.processes = Processes(self.env(), self.root / self.dbname)
        names = list(self.info["users"])
        self.sessions = self.processes.python(f"NAMES = {names!r}\n" + SESSIONS)
        self.base_url = start_web(self.processes)
        return self.base_url

    def client(self, user: str) -> Client:
        client = Client(self.base_url, timeout=300)
        client.use_session(self.sessions[user])
        return client

    def stop(self) -> None:
        if self.processes is not None:
            self.processes.stop_all()
            self.processes = None

    def python(self, code: str, timeout: float = 3600) -> Any:
        assert self.processes is not None
        return self.processes.python(code, timeout=timeout)

    def connect(self):
        return self.cluster.connect(self.dbname)


def scratch_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="portal-bench-"))
