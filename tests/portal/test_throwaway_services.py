"""The throwaway-service toolkit (tests/services.py) and the session's own services."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
import redis

from tests.services import PgCluster, RedisServer

BASE_DIR = Path(__file__).resolve().parents[2]


def refuses(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_until(condition, *, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s")


def postmaster_pid(cluster: PgCluster) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().split()[0])


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


# --- PostgreSQL ----------------------------------------------------------------------


def test_a_throwaway_cluster_answers_on_its_own_port_with_pg_stat_statements(
    throwaway_cluster,
):
    cluster = throwaway_cluster
    with cluster.connect() as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        conn.execute("CREATE EXTENSION pg_stat_statements")
        calls = conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0]
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        socket_dir = conn.execute("SHOW unix_socket_directories").fetchone()[0]
        fsync = conn.execute("SHOW fsync").fetchone()[0]

    assert cluster.port != 5432
    assert preload == "pg_stat_statements"
    assert calls >= 1
    assert listen == "127.0.0.1"
    assert Path(socket_dir) == cluster.socket_dir
    assert (cluster.socket_dir / f".s.PGSQL.{cluster.port}").exists()
    assert fsync == "off"
    assert cluster.url("x") == f"postgres://postgres@127.0.0.1:{cluster.port}/x"
    with psycopg.connect(cluster.url(), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "postgres"


def test_a_restart_keeps_the_data_and_the_port_and_applies_alter_system(throwaway_cluster):
    cluster = throwaway_cluster
    port = cluster.port
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (41), (42)")
        conn.execute("ALTER SYSTEM SET max_connections = 120")
        conn.execute("SELECT pg_reload_conf()")
    wait_until(
        lambda: (
            cluster.connect()
            .execute("SELECT pending_restart FROM pg_settings WHERE name = 'max_connections'")
            .fetchone()[0]
        ),
        what="max_connections pending a restart",
    )
    before = postmaster_pid(cluster)

    cluster.restart()

    assert cluster.port == port
    assert postmaster_pid(cluster) != before
    with cluster.connect() as conn:
        assert conn.execute("SELECT n FROM kept ORDER BY n").fetchall() == [(41,), (42,)]
        assert conn.execute("SHOW max_connections").fetchone()[0] == "120"


def test_reload_applies_a_setting_without_a_restart(throwaway_cluster):
    cluster = throwaway_cluster
    before = postmaster_pid(cluster)
    with cluster.connect() as conn:
        conn.execute("ALTER SYSTEM SET work_mem = '7MB'")

    cluster.reload()

    wait_until(
        lambda: cluster.connect().execute("SHOW work_mem").fetchone()[0] == "7MB",
        what="work_mem reloaded",
    )
    assert postmaster_pid(cluster) == before


def test_settings_go_to_the_configuration_file_where_alter_system_still_wins(
    pg_cluster_factory,
):
    cluster = pg_cluster_factory(
        settings={"work_mem": "5MB", "application_name": "it's quoted"},
        command_line={"maintenance_work_mem": "70MB"},
        preload=None,
    )
    with cluster.connect() as conn:
        rows = dict(
            conn.execute(
                "SELECT name, setting || ':' || source FROM pg_settings"
                " WHERE name IN ('work_mem', 'maintenance_work_mem', 'application_name',"
                " 'shared_preload_libraries')"
            ).fetchall()
        )
        conn.execute("ALTER SYSTEM SET work_mem = '6MB'")
        conn.execute("ALTER SYSTEM SET maintenance_work_mem = '80MB'")
    assert rows["work_mem"] == "5120:configuration file"
    assert rows["maintenance_work_mem"] == "71680:command line"
    assert rows["application_name"] == "it's quoted:configuration file"
    assert rows["shared_preload_libraries"].startswith(":")

    cluster.restart()

    with cluster.connect() as conn:
        assert conn.execute("SHOW work_mem").fetchone()[0] == "6MB"
        assert conn.execute("SHOW maintenance_work_mem").fetchone()[0] == "70MB"


def test_stop_and_start_again_keep_the_data(throwaway_cluster):
    cluster = throwaway_cluster
    with cluster.connect() as conn:
        conn.execute("CREATE TABLE kept AS SELECT 1 AS n")

    cluster.stop()
    assert not cluster.running
    assert refuses(cluster.port)
    cluster.start()

    assert cluster.running
    with cluster.connect() as conn:
        assert conn.execute("SELECT n FROM kept").fetchone() == (1,)


def test_remove_stops_the_server_and_deletes_every_directory():
    cluster = PgCluster().start()
    pid = postmaster_pid(cluster)
    root, port = cluster.root, cluster.port
    assert root.exists()

    cluster.remove()

    assert not root.exists()
    assert refuses(port)
    assert not alive(pid)
    cluster.remove()  # a second removal is harmless


def test_two_clusters_run_at_once_and_are_independent(pg_cluster_factory):
    first = pg_cluster_factory()
    second = pg_cluster_factory(settings={"work_mem": "9MB"})
    with first.connect() as conn:
        conn.execute("CREATE TABLE only_in_first (n int)")

    assert first.port != second.port
    assert first.data_dir != second.data_dir
    with second.connect() as conn:
        assert conn.execute("SELECT to_regclass('only_in_first')").fetchone() == (None,)
        assert conn.execute("SHOW work_mem").fetchone()[0] == "9MB"
    with first.connect() as conn:
        assert conn.execute("SHOW work_mem").fetchone()[0] == "4MB"


def test_create_database_gives_its_url(throwaway_cluster):
    url = throwaway_cluster.create_database("portal_copy")

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "portal_copy"


# --- Redis -----------------------------------------------------------------------------


def test_a_private_redis_stops_losing_its_data_and_comes_back_on_the_same_port(private_redis):
    server = private_redis
    client = redis.Redis.from_url(server.url(2), socket_connect_timeout=2)
    client.set("key", "value")
    port = server.port
    assert server.port != 6379

    server.stop()

    assert not server.running
    assert refuses(port)
    with pytest.raises(redis.ConnectionError):
        client.get("key")

    server.start()

    assert server.port == port
    assert client.get("key") is None
    client.set("key", "again")
    assert client.get("key") == b"again"


def test_two_private_redis_servers_never_share_a_key():
    with RedisServer() as first, RedisServer() as second:
        redis.Redis.from_url(first.url()).set("k", "first")

        assert first.port != second.port
        assert redis.Redis.from_url(second.url()).get("k") is None
    assert not first.root.exists() and not second.root.exists()
    assert refuses(first.port) and refuses(second.port)


# --- a killed process leaves nothing behind ------------------------------------------


def test_servers_of_a_killed_process_are_removed_by_the_reaper(tmp_path):
    script = textwrap.dedent(
        """
        import json, os, signal, sys
        from tests.services import PgCluster, RedisServer
        cluster = PgCluster().start()
        server = RedisServer().start()
        pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
        print(json.dumps({"pg": [str(cluster.root), cluster.port, pid],
                          "redis": [str(server.root), server.port]}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={**os.environ, "PYTHONPATH": str(BASE_DIR)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    left = json.loads(result.stdout)
    pg_root, pg_port, pg_pid = left["pg"]
    redis_root, redis_port = left["redis"]

    wait_until(
        lambda: not Path(pg_root).exists() and not Path(redis_root).exists(),
        what="the reaper deleting the killed process's directories",
    )
    assert not alive(pg_pid)
    assert refuses(pg_port) and refuses(redis_port)


# --- the session's own services, as `make test` starts them --------------------------


INNER_TEST = """
import json, os
import psycopg, redis
from django.conf import settings

def test_the_session_services():
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"],
                         dbname=db["NAME"]) as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    redis.Redis.from_url(os.environ["REDIS_URL"]).ping()
    report = {
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "none"),
        "database_url": os.environ["DATABASE_URL"],
        "redis_url": os.environ["REDIS_URL"],
        "broker": os.environ["CELERY_BROKER_URL"],
        "settings_broker": settings.CELERY_BROKER_URL,
        "port": db["PORT"],
        "preload": preload,
        "data_dir": data_dir,
    }
    with open(os.environ["INNER_REPORT"], "a") as out:
        out.write(json.dumps(report) + "\\n")
"""


def run_inner_session(tmp_path: Path, *extra: str) -> list[dict]:
    test_file = tmp_path / "test_inner_session.py"
    test_file.write_text(INNER_TEST)
    report = tmp_path / "report.jsonl"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PYTEST_XDIST_WORKER"}
        and not key.startswith(("PYTEST_", "DJANGO_"))
    }
    env.update({"INNER_REPORT": str(report), "PORTAL_VAR_DIR": str(tmp_path / "var")})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(BASE_DIR / "pyproject.toml"),
            "--rootdir",
            str(BASE_DIR),
            "-q",
            *extra,
            str(test_file),
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in report.read_text().splitlines()]


@pytest.mark.parametrize("extra", [(), ("-n", "2", "--dist", "each")], ids=["plain", "xdist"])
def test_a_session_without_urls_starts_its_own_services_once_and_removes_them(tmp_path, extra):
    reports = run_inner_session(tmp_path, *extra)

    # --dist each: every worker runs the test, so both workers report what they saw.
    assert len(reports) == (2 if extra else 1)
    assert len({r["database_url"] for r in reports}) == 1, "one cluster for every worker"
    assert len({r["redis_url"] for r in reports}) == 1, "one Redis for every worker"
    if extra:
        assert {r["worker"] for r in reports} == {"gw0", "gw1"}
    first = reports[0]
    assert first["port"] not in ("5432", 5432, "")
    assert first["database_url"].startswith("postgres://postgres@127.0.0.1:")
    assert first["preload"] == "pg_stat_statements"
    redis_port = int(first["redis_url"].rsplit(":", 1)[1].split("/")[0])
    assert redis_port != 6379
    # The broker follows the private Redis; each worker has its own database on it.
    for r in reports:
        assert r["broker"].rsplit("/", 1)[0] == r["redis_url"].rsplit("/", 1)[0]
        assert r["settings_broker"] == r["broker"]
    # Removed when the session ended.
    assert not Path(first["data_dir"]).exists()
    assert refuses(int(first["port"]))
    assert refuses(redis_port)


def test_check_services_names_exactly_what_is_missing(tmp_path):
    env = {
        "PATH": str(tmp_path),  # neither pg_config, initdb nor redis-server on it
        "PORTAL_PG_BINDIR": str(tmp_path / "no-postgres-here"),
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "scripts/check_services.py"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    assert "initdb, pg_ctl and postgres were not found" in result.stderr
    assert "redis-server was not found" in result.stderr
    assert "PostgreSQL does not answer" not in result.stderr


def test_check_services_names_a_given_server_that_does_not_answer(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}},
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/portal",
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
    }
    result = subprocess.run(
        [sys.executable, "scripts/check_services.py"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"PostgreSQL does not answer at 127.0.0.1:{port}/portal" in result.stderr
    assert f"Redis does not answer at redis://127.0.0.1:{port}/0" in result.stderr
