"""The test session's own PostgreSQL and Redis when none are given; service fixtures.

When ``DATABASE_URL`` is not set, the session starts a throwaway PostgreSQL cluster
(``pg_stat_statements`` preloaded, a free port) and points ``DATABASE_URL`` at it; when
``REDIS_URL`` is not set, a private ``redis-server``, and ``REDIS_URL`` and
``CELERY_BROKER_URL`` follow it. Both are removed when the session ends.

This must happen before ``portal.settings`` is imported, which reads the environment:
pytest-django imports it and sets Django up in its ``pytest_load_initial_conftests``.
pluggy calls a hook's wrappers before its plain implementations (and, within each
group, tryfirst ones first and otherwise the last registered first), so this wrapper
runs ahead of pytest-django's implementation whether or not that one is tryfirst. It
must be a ``-p`` plugin: that hook is never called for conftest files.

Under pytest-xdist the services start once, in the controller, before any worker
exists; workers inherit the environment, find the URLs set and start nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.services import PgCluster, RedisServer, ServiceError, missing_binaries

DATABASE_NAME = "portal"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser, args: list[str]):
    asks_for_help = any(arg in {"-h", "--help", "--version", "-V"} for arg in args)
    if not asks_for_help and not os.environ.get("PYTEST_XDIST_WORKER"):
        _start_session_services(early_config)
    return (yield)


def _start_session_services(config: pytest.Config) -> None:
    need_pg = not os.environ.get("DATABASE_URL")
    need_redis = not os.environ.get("REDIS_URL")
    problems = missing_binaries(postgres=need_pg, redis=need_redis)
    if problems:
        raise pytest.UsageError(
            "The suite starts its own PostgreSQL and Redis when DATABASE_URL / REDIS_URL "
            "are not set, and cannot:\n  - " + "\n  - ".join(problems)
        )
    started: list[PgCluster | RedisServer] = []

    def remove_all() -> None:
        for service in reversed(started):
            service.remove()

    config.add_cleanup(remove_all)
    try:
        if need_pg:
            cluster = PgCluster()
            started.append(cluster)
            cluster.start()
            cluster.create_database(DATABASE_NAME)
            os.environ["DATABASE_URL"] = cluster.url(DATABASE_NAME)
        if need_redis:
            redis = RedisServer()
            started.append(redis)
            redis.start()
            os.environ["REDIS_URL"] = redis.url(0)
    except ServiceError as exc:
        remove_all()
        raise pytest.UsageError(f"The suite's own services did not start: {exc}") from exc
    # The broker follows the Redis the suite uses, private or given (tests/conftest.py
    # then gives each xdist worker a database of its own on it).
    os.environ["CELERY_BROKER_URL"] = os.environ["REDIS_URL"]
    os.environ.setdefault("PORTAL_ENV", "test")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    config.stash[_services_key] = [repr(service) for service in started]


_services_key = pytest.StashKey[list[str]]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    services = config.stash.get(_services_key, [])
    return [f"private test services: {', '.join(services)}"] if services else []


# --- fixtures for tests that restart or reconfigure a server, or stop a broker -------


@pytest.fixture
def pg_cluster_factory() -> Iterator[Callable[..., PgCluster]]:
    """``pg_cluster_factory(settings=..., command_line=..., preload=...)`` -> a started
    throwaway cluster; every cluster made is removed after the test."""
    made: list[PgCluster] = []

    def make(**kwargs) -> PgCluster:
        cluster = PgCluster(**kwargs)
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.remove()


@pytest.fixture
def throwaway_cluster(pg_cluster_factory) -> PgCluster:
    """A started throwaway PostgreSQL cluster that the test may ALTER SYSTEM and restart."""
    return pg_cluster_factory()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A started private redis-server for outage drills (stop(), then start() again)."""
    with RedisServer() as server:
        yield server
