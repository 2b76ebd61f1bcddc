"""Say exactly which test service is missing before the suite starts."""

from __future__ import annotations

import os
import shutil
import sys

import psycopg
import redis

problems: list[str] = []
database_url = os.environ["DATABASE_URL"]
redis_url = os.environ["REDIS_URL"]

try:
    # Tests create their own databases; the server must answer on the maintenance DB.
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", connect_timeout=5) as conn:
        conn.execute("SELECT 1")
except Exception as exc:
    problems.append(
        f"PostgreSQL does not answer at {database_url.rsplit('@', 1)[-1]}: {exc}".strip()
        + "\n    start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
    )
try:
    redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
except Exception as exc:
    problems.append(
        f"Redis does not answer at {redis_url}: {exc}\n    start it: redis-server --daemonize yes"
        ' --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
    )
if not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
    problems.append(
        "Chromium is missing at /usr/bin/chromium (browser tests need it): "
        "apt-get update && apt-get install -y chromium"
    )
if problems:
    print("make test cannot run:\n  - " + "\n  - ".join(problems), file=sys.stderr)
    sys.exit(2)
print("PostgreSQL, Redis and Chromium are available.")
