"""Celery tasks of the maintenance app: each takes ids and calls one service."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_shutting_down
from django.conf import settings

from maintenance import runner, services

logger = logging.getLogger(__name__)


@shared_task(name="maintenance.generate_windows", acks_late=True, ignore_result=True)
def generate_windows() -> int:
    return len(services.windows_generate())


@shared_task(name="maintenance.send_pre_start_notices", acks_late=True, ignore_result=True)
def send_pre_start_notices() -> int:
    return services.window_notices_send()


@shared_task(name="maintenance.start_due_windows", acks_late=True, ignore_result=True)
def start_due_windows() -> int:
    return services.start_due_windows()


@shared_task(name="maintenance.advance_execution", acks_late=True, ignore_result=True)
def advance_execution(execution_id: int) -> str:
    return services.execution_advance(execution_id=execution_id)


# acks_late: a delivery lost with its worker comes back, and run_claim refuses to run
# a run twice; the reaper reports the lost one. Limits cover the longest window.
@shared_task(
    name="maintenance.execute_run",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=False,
    soft_time_limit=settings.PROCEDURE_TIME_LIMIT,
    time_limit=settings.PROCEDURE_TIME_LIMIT + 60,
)
def execute_run(self, run_id: int) -> str:
    return runner.execute_run(run_id=run_id, node=self.request.hostname or "")


@shared_task(name="maintenance.reap_stale_runs", acks_late=True, ignore_result=True)
def reap_stale_runs() -> int:
    return services.runs_reap_stale()


@shared_task(name="maintenance.enforce_cutoffs", acks_late=True, ignore_result=True)
def enforce_cutoffs() -> int:
    return services.cutoffs_enforce()


@shared_task(name="maintenance.generate_report", acks_late=True, ignore_result=True)
def generate_report(execution_id: int) -> str:
    return services.execution_report_generate(execution_id=execution_id).report.name


@worker_shutting_down.connect(dispatch_uid="maintenance_stop_runs")
def _stop_runs_on_shutdown(sender=None, **kwargs) -> None:
    """A stopping worker asks its running procedures to stop after the grace period:
    their heartbeat threads end the work and mark the runs INTERRUPTED, instead of a
    four-hour procedure holding the stop for four hours or being left running."""
    try:
        count = services.runs_stop_for_worker(
            worker_node=str(sender or ""), grace_seconds=settings.WORKER_STOP_GRACE_SECONDS
        )
    except Exception:
        logger.exception("could not ask the running procedures to stop")
        return
    if count:
        logger.warning(
            "asked %s running procedure(s) to stop within %s s",
            count,
            settings.WORKER_STOP_GRACE_SECONDS,
        )
