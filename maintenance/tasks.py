"""Celery tasks of the maintenance app: each takes ids and calls one service."""

from __future__ import annotations

from celery import shared_task

from maintenance import runner, services


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
    acks_late=True,
    reject_on_worker_lost=False,
    soft_time_limit=4 * 60 * 60,
    time_limit=4 * 60 * 60 + 60,
)
def execute_run(run_id: int) -> str:
    return runner.execute_run(run_id=run_id)


@shared_task(name="maintenance.reap_stale_runs", acks_late=True, ignore_result=True)
def reap_stale_runs() -> int:
    return services.runs_reap_stale()


@shared_task(name="maintenance.generate_report", acks_late=True, ignore_result=True)
def generate_report(execution_id: int) -> str:
    return services.execution_report_generate(execution_id=execution_id).report.name
