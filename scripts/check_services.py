"""Say exactly which test service is missing before the suite starts.

With DATABASE_URL / REDIS_URL set, those servers must answer. Without them the suite
starts its own throwaway PostgreSQL cluster and redis-server (tests/plugins/services.py),
so the installed binaries must be there instead.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.services import missing_binaries

problems: list[str] = []
database_url = os.environ.get("DATABASE_URL", "")
redis_url = os.environ.get("REDIS_URL", "")

if database_url:
    import psycopg

    try:
        # Tests create their own databases; the server must answer on the maintenance DB.
        with psycopg.connect(
            database_url.rsplit("/", 1)[0] + "/postgres", connect_timeout=5
        ) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        problems.append(
            f"PostgreSQL does not answer at {database_url.rsplit('@', 1)[-1]}: {exc}".strip()
            + "\n    start it, or unset DATABASE_URL to let the suite start its own cluster"
        )
if redis_url:
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:
        problems.append(
            f"Redis does not answer at {redis_url}: {exc}\n"
            "    start it, or unset REDIS_URL to let the suite start its own redis-server"
        )
problems.extend(missing_binaries(postgres=not database_url, redis=not redis_url))
if not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
    problems.append(
        "Chromium is missing at /usr/bin/chromium (browser tests need it): "
        "apt-get update && apt-get install -y chromium"
    )
if problems:
    print("make test cannot run:\n  - " + "\n  - ".join(problems), file=sys.stderr)
    sys.exit(2)
print(
    "PostgreSQL: "
    + (database_url.rsplit("@", 1)[-1] if database_url else "the suite's own throwaway cluster")
    + "; Redis: "
    + (redis_url or "the suite's own redis-server")
    + "; Chromium: available."
)
