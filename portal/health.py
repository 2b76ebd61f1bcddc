"""Readiness of the portal's dependencies for /healthz."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor}


def check_broker() -> dict[str, Any]:
    from portal.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2, interval_start=0)
            transport = conn.transport_cls
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "transport": str(transport)}


def check_worker() -> dict[str, Any]:
    from portal.models import WorkerHeartbeat

    try:
        last = WorkerHeartbeat.objects.order_by("-last_seen").first()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if last is None:
        return {"ok": False, "error": "no worker heartbeat yet"}
    age = timezone.now() - last.last_seen
    fresh = age <= timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_SECONDS)
    return {
        "ok": fresh,
        "last_heartbeat": last.last_seen.isoformat(),
        "age_seconds": round(age.total_seconds(), 1),
        "hostname": last.hostname,
    }


def check_outbox() -> dict[str, Any]:
    """Tasks asked for but not done yet: the oldest one's age shows a stuck pipeline."""
    from portal.outbox import outbox_backlog

    try:
        backlog = outbox_backlog()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    age = backlog["oldest_undone_age_seconds"]
    return {"ok": age is None or age <= settings.OUTBOX_STALE_SECONDS, **backlog}


def health_report() -> tuple[bool, dict[str, Any]]:
    report = {
        "database": check_database(),
        "broker": check_broker(),
        "worker": check_worker(),
        "outbox": check_outbox(),
    }
    healthy = all(part["ok"] for part in report.values())
    report["status"] = "ok" if healthy else "degraded"
    return healthy, report
