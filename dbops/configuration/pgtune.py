"""A PGTune-style proposal (the formulas of pgtune.leopard.in.ua, PostgreSQL 13+ on Linux)
from the host's RAM, CPUs, storage and the kind of workload.

Every value is an ordinary change-set entry: it goes through the same rules, so a
suggestion that breaks one (a data warehouse's 40 connections against the seed's
100..1000) is shown with the failing verdict rather than silently adjusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dbops.configuration.units import format_bytes

KB = 1024
MB = 1024 * KB
GB = 1024 * MB

WORKLOADS = {
    "web": "Web application",
    "oltp": "Online transaction processing",
    "dw": "Data warehouse",
    "desktop": "Desktop application",
    "mixed": "Mixed",
}
STORAGE = {"ssd": "SSD", "hdd": "HDD", "san": "SAN", "nvme": "NVMe"}
_CONNECTIONS = {"web": 200, "oltp": 300, "dw": 40, "desktop": 20, "mixed": 100}
_MIN_WAL_MB = {"web": 1024, "oltp": 2048, "dw": 4096, "desktop": 100, "mixed": 1024}
_MAX_WAL_MB = {"web": 4096, "oltp": 8192, "dw": 16384, "desktop": 2048, "mixed": 4096}
_WORK_MEM_DIVISOR = {"web": 1, "oltp": 1, "dw": 2, "desktop": 6, "mixed": 2}
_RANDOM_PAGE_COST = {"hdd": "4", "ssd": "1.1", "san": "1.1", "nvme": "1.1"}
_IO_CONCURRENCY = {"hdd": 2, "ssd": 200, "san": 300, "nvme": 1000}


@dataclass(frozen=True)
class Suggestion:
    parameter: str
    value: str
    why: str


def _kb(value_kb: float) -> str:
    return format_bytes(int(value_kb) * KB)


def suggest(
    *,
    ram_bytes: int,
    cpus: int | None,
    storage: str,
    workload: str,
    connections: int | None = None,
) -> list[Suggestion]:
    if workload not in WORKLOADS:
        raise ValueError(f"Unknown workload kind {workload!r}.")
    if storage not in STORAGE:
        raise ValueError(f"Unknown storage type {storage!r}.")
    if ram_bytes <= 0:
        raise ValueError("RAM must be positive.")
    ram_kb = ram_bytes / KB
    max_connections = connections or _CONNECTIONS[workload]
    shared_kb = math.floor(ram_kb / (16 if workload == "desktop" else 4))
    cache_kb = math.floor(ram_kb / 4 if workload == "desktop" else ram_kb * 3 / 4)
    maintenance_kb = min(math.floor(ram_kb / (8 if workload == "dw" else 16)), 2 * GB / KB)
    wal_kb = math.floor(3 * shared_kb / 100)
    wal_kb = min(wal_kb, 16 * MB / KB)
    if 14 * MB / KB < wal_kb < 16 * MB / KB:
        wal_kb = 16 * MB / KB
    wal_kb = max(wal_kb, 32)
    out = [
        Suggestion(
            "max_connections",
            str(max_connections),
            f"{WORKLOADS[workload]} default" if not connections else "as asked",
        ),
        Suggestion(
            "shared_buffers", _kb(shared_kb), f"1/{16 if workload == 'desktop' else 4} of RAM"
        ),
        Suggestion(
            "effective_cache_size",
            _kb(cache_kb),
            f"{'1/4' if workload == 'desktop' else '3/4'} of RAM",
        ),
        Suggestion(
            "maintenance_work_mem",
            _kb(maintenance_kb),
            f"1/{8 if workload == 'dw' else 16} of RAM, at most 2GB",
        ),
        Suggestion("checkpoint_completion_target", "0.9", "spread checkpoints out"),
        Suggestion("wal_buffers", _kb(wal_kb), "3% of shared_buffers, 32kB..16MB"),
        Suggestion(
            "default_statistics_target",
            "500" if workload == "dw" else "100",
            "larger samples for analytic plans" if workload == "dw" else "the default",
        ),
        Suggestion("random_page_cost", _RANDOM_PAGE_COST[storage], f"{STORAGE[storage]} storage"),
        Suggestion(
            "effective_io_concurrency",
            str(_IO_CONCURRENCY[storage]),
            f"concurrent I/O {STORAGE[storage]} sustains",
        ),
    ]
    parallel: list[Suggestion] = []
    if cpus and cpus >= 4:
        per_gather = math.ceil(cpus / 2)
        if workload != "dw":
            per_gather = min(per_gather, 4)
        parallel = [
            Suggestion("max_worker_processes", str(cpus), f"{cpus} CPUs"),
            Suggestion("max_parallel_workers_per_gather", str(per_gather), "half the CPUs"),
            Suggestion("max_parallel_workers", str(cpus), f"{cpus} CPUs"),
            Suggestion(
                "max_parallel_maintenance_workers",
                str(min(math.ceil(cpus / 2), 4)),
                "half the CPUs, at most 4",
            ),
        ]
    workers = cpus if cpus and cpus >= 4 else 8
    work_kb = (ram_kb - shared_kb) / ((max_connections + workers) * 3)
    work_kb = max(math.floor(work_kb / _WORK_MEM_DIVISOR[workload]), 64)
    out.append(
        Suggestion(
            "work_mem",
            _kb(work_kb),
            f"(RAM − shared_buffers) / ((max_connections + {workers} workers) × 3)"
            + (f" / {_WORK_MEM_DIVISOR[workload]}" if _WORK_MEM_DIVISOR[workload] > 1 else ""),
        )
    )
    out.append(
        Suggestion(
            "huge_pages",
            "try" if shared_kb >= 2 * GB / KB else "off",
            "shared_buffers of 2GB or more" if shared_kb >= 2 * GB / KB else "small buffers",
        )
    )
    out.append(Suggestion("min_wal_size", f"{_MIN_WAL_MB[workload]}MB", WORKLOADS[workload]))
    out.append(Suggestion("max_wal_size", f"{_MAX_WAL_MB[workload]}MB", WORKLOADS[workload]))
    return out + parallel
