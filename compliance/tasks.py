"""Celery tasks of the compliance app: each takes an id and calls one service."""

from __future__ import annotations

from celery import shared_task

from compliance import services

# Large exports and long chains take longer than the default ten-minute limit.
LONG = {"soft_time_limit": 60 * 60, "time_limit": 61 * 60}


@shared_task(name="compliance.run_export", acks_late=True, ignore_result=True, **LONG)
def run_export(job_id: int) -> str:
    return services.export_job_run(job_id=job_id)


@shared_task(name="compliance.verify_chain", acks_late=True, ignore_result=True, **LONG)
def verify_chain(verification_id: int) -> str:
    return services.chain_verification_run(verification_id=verification_id)
