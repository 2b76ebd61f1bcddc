"""What the rules know about a target beyond pg_settings: RAM, CPUs, storage and the
concurrent users (configured, and the peak observed in its statistics snapshots)."""

from __future__ import annotations

from datetime import timedelta

import psutil
import psycopg
from django.db.models import Max
from django.utils import timezone

from dbops import sqlfiles
from dbops.configuration.rules import Facts
from dbops.models import DatabaseTarget, QueryStatsSnapshot

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
PEAK_DAYS = 30


def is_local(target: DatabaseTarget) -> bool:
    """The worker runs beside the target: psutil then measures the target's host."""
    host = (target.host or "").strip().lower()
    return host in LOCAL_HOSTS or host.startswith("/")


def connections_now(conn: psycopg.Connection) -> int:
    return int(conn.execute(sqlfiles.load("proc_connections")).fetchone()[0])


def observed_peak(target: DatabaseTarget, now_used: int | None) -> tuple[int | None, str]:
    since = timezone.now() - timedelta(days=PEAK_DAYS)
    peak = QueryStatsSnapshot.objects.filter(
        target=target, taken_at__gte=since, connections_used__isnull=False
    ).aggregate(peak=Max("connections_used"))["peak"]
    values = [v for v in (peak, now_used) if v is not None]
    if not values:
        return None, ""
    source = (
        f"peak of the last {PEAK_DAYS} days' statistics snapshots and now"
        if peak is not None
        else "connections now; no statistics snapshot records any yet"
    )
    return max(values), source


def target_facts(target: DatabaseTarget, conn: psycopg.Connection | None = None) -> Facts:
    local = is_local(target)
    if target.memory_bytes:
        ram, ram_source = int(target.memory_bytes), "configured on the target"
    elif local:
        ram, ram_source = int(psutil.virtual_memory().total), "read by psutil beside the target"
    else:
        ram, ram_source = None, ""
    cpus = target.cpu_count or (psutil.cpu_count(logical=True) if local else None)
    used = connections_now(conn) if conn is not None else None
    peak, peak_source = observed_peak(target, used)
    return Facts(
        ram_bytes=ram,
        ram_source=ram_source,
        cpus=cpus,
        storage=target.storage_type,
        users_configured=target.expected_concurrent_users,
        users_observed=peak,
        users_observed_source=peak_source,
    )
