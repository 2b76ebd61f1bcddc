"""The seed's CONFIG_VALIDATION['DATABASE'] as rule rows: created by a data migration
and put back by tests after a flush. ``apps`` is the migration (or global) registry."""

from __future__ import annotations

from decimal import Decimal

RULES = [
    {
        "code": "max_connections_range",
        "rule_type": "RANGE",
        "parameter": "max_connections",
        "minimum": "100",
        "maximum": "1000",
        "description": "Seed rule: max_connections between 100 and 1000.",
    },
    {
        "code": "shared_buffers_minimum",
        "rule_type": "RANGE",
        "parameter": "shared_buffers",
        "minimum": "1024MB",
        "description": "Seed rule: parseMemoryValue(shared_buffers) >= 1024 (MB).",
    },
    {
        "code": "SYSTEM_MEMORY",
        "rule_type": "SYSTEM_MEMORY",
        "description": "Seed dependency: the host's RAM, configured on the target or read "
        "by psutil where the worker runs beside it.",
    },
    {
        "code": "CONCURRENT_USERS",
        "rule_type": "CONCURRENT_USERS",
        "description": "Seed dependency: the expected concurrent users configured on the "
        "target and the peak observed in its statistics snapshots.",
    },
    {
        "code": "TOTAL_MEMORY_LIMIT",
        "rule_type": "TOTAL_MEMORY_LIMIT",
        "factor": Decimal("1.00"),
        "share_percent": 75,
        "description": "Seed constraint: shared_buffers + max_connections × work_mem × k + "
        "autovacuum_max_workers × maintenance_work_mem + wal_buffers within a share of RAM.",
    },
    {
        "code": "PERFORMANCE_REQUIREMENTS",
        "rule_type": "PERFORMANCE_REQUIREMENTS",
        "headroom_percent": 20,
        "description": "Seed constraint: max_connections at least the concurrent users plus "
        "headroom plus the superuser reserve.",
    },
]


def missing(apps) -> bool:
    Rule = apps.get_model("dbops", "ConfigurationRule")
    return not Rule.objects.exists()


def seed(apps) -> None:
    Rule = apps.get_model("dbops", "ConfigurationRule")
    for row in RULES:
        Rule.objects.get_or_create(code=row["code"], defaults=row)
