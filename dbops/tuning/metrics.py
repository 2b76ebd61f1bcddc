"""One sample of metrics over an interval: PostgreSQL-side counters always, host
metrics from psutil when the worker runs beside the target."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil
import psycopg
from psycopg.rows import dict_row

from dbops import sqlfiles

# What a session may be judged by, and which way is better.
METRICS: dict[str, tuple[str, bool]] = {
    "tps": ("Transactions per second", True),
    "latency_ms": ("Latency (ms)", False),
    "cache_hit_ratio": ("Cache hit ratio", True),
    "temp_bytes": ("Temporary bytes written", False),
    "cpu_percent": ("Host CPU (%)", False),
}


@dataclass
class Counters:
    at: float
    xacts: int
    blks_hit: int
    blks_read: int
    temp_bytes: int
    checkpoints: int
    disk_read: int | None = None
    disk_write: int | None = None
    net_sent: int | None = None
    net_recv: int | None = None


@dataclass
class Sample:
    seconds: float
    tps: float | None = None
    latency_ms: float | None = None
    cache_hit_ratio: float | None = None
    temp_bytes: int | None = None
    checkpoints: int | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None
    disk_read_bytes: int | None = None
    disk_write_bytes: int | None = None
    net_sent_bytes: int | None = None
    net_recv_bytes: int | None = None

    def value(self, metric: str) -> float | None:
        value = getattr(self, metric)
        return None if value is None else float(value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_counters(conn: psycopg.Connection, *, host: bool) -> Counters:
    # Statistics are cached per transaction; a fresh read sees what backends flushed.
    conn.execute("SELECT pg_stat_clear_snapshot()")
    name = "tuning_counters_pg17" if conn.info.server_version >= 170000 else "tuning_counters"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sqlfiles.load(name))
        row = cur.fetchone()
    counters = Counters(
        at=time.monotonic(),
        xacts=int(row["xacts"] or 0),
        blks_hit=int(row["blks_hit"] or 0),
        blks_read=int(row["blks_read"] or 0),
        temp_bytes=int(row["temp_bytes"] or 0),
        checkpoints=int(row["checkpoints"] or 0),
    )
    if host:
        disk = psutil.disk_io_counters()
        net = psutil.net_io_counters()
        if disk is not None:
            counters.disk_read, counters.disk_write = disk.read_bytes, disk.write_bytes
        if net is not None:
            counters.net_sent, counters.net_recv = net.bytes_sent, net.bytes_recv
    return counters


def _delta(after: int | None, before: int | None) -> int | None:
    return None if after is None or before is None else max(after - before, 0)


def between(before: Counters, after: Counters, *, host: bool) -> Sample:
    """The sample of the interval between two readings (PostgreSQL counters and host)."""
    seconds = max(after.at - before.at, 1e-6)
    hit, read = after.blks_hit - before.blks_hit, after.blks_read - before.blks_read
    sample = Sample(
        seconds=round(seconds, 3),
        tps=round((after.xacts - before.xacts) / seconds, 3),
        cache_hit_ratio=round(hit / (hit + read), 6) if hit + read > 0 else None,
        temp_bytes=_delta(after.temp_bytes, before.temp_bytes),
        checkpoints=_delta(after.checkpoints, before.checkpoints),
    )
    if host:
        sample.cpu_percent = psutil.cpu_percent(interval=None)
        sample.memory_percent = psutil.virtual_memory().percent
        sample.disk_read_bytes = _delta(after.disk_read, before.disk_read)
        sample.disk_write_bytes = _delta(after.disk_write, before.disk_write)
        sample.net_sent_bytes = _delta(after.net_sent, before.net_sent)
        sample.net_recv_bytes = _delta(after.net_recv, before.net_recv)
    return sample


def prime_host() -> None:
    """psutil's cpu_percent(None) measures since its previous call: start the clock."""
    psutil.cpu_percent(interval=None)


def observe(conn: psycopg.Connection, seconds: float, *, host: bool) -> Sample:
    """A sample of whatever the server does for ``seconds`` (no workload of our own)."""
    if host:
        prime_host()
    before = read_counters(conn, host=host)
    deadline = before.at + seconds
    # The interval is the measurement itself: the counters are read at both ends.
    while time.monotonic() < deadline:
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
    return between(before, read_counters(conn, host=host), host=host)
