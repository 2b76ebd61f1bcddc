"""Worker liveness for /healthz: each worker process writes a heartbeat row."""

from __future__ import annotations

import logging
import socket
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

logger = logging.getLogger(__name__)
_stop = threading.Event()


def beat_once(hostname: str) -> None:
    from portal.models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname[:255], defaults={"last_seen": timezone.now()}
    )


def _loop(hostname: str) -> None:
    while not _stop.is_set():
        try:
            close_old_connections()
            beat_once(hostname)
        except Exception:
            logger.exception("worker heartbeat failed")
        finally:
            connection.close()
        _stop.wait(settings.WORKER_HEARTBEAT_SECONDS)


@worker_ready.connect
def _start(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", None) or socket.gethostname()
    _stop.clear()
    threading.Thread(target=_loop, args=(hostname,), name="portal-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _stop_loop(**kwargs) -> None:
    _stop.set()
