"""Writes of tuning sessions: every sample as it is taken, each adjustment's decision
and the session's outcome (decisions and outcomes audited on the change)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from dbops.models import DatabaseTarget
from dbops.tuning.metrics import Sample
from dbops.tuning.models import TuningAdjustment, TuningSample, TuningSession
from portal.audit import audit_record
from portal.models import AuditEvent
from portal.transactions import service

WORKER = "worker"


@service
def tuning_session_start(
    *,
    run_id: int,
    target: DatabaseTarget,
    purpose: str,
    change_set=None,
    resource: str = TuningSession.Resource.CPU,
    metric: str = "tps",
    higher_is_better: bool = True,
    workload: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    host_metrics: bool = False,
    adjustments: list[list[list[str]]] | None = None,
) -> TuningSession:
    session = TuningSession.objects.create(
        run_id=run_id,
        target=target,
        change_set=change_set,
        purpose=purpose,
        resource=resource,
        metric=metric,
        higher_is_better=higher_is_better,
        workload=workload or {},
        settings=settings or {},
        host_metrics=host_metrics,
    )
    TuningAdjustment.objects.bulk_create(
        TuningAdjustment(session=session, position=n, entries=entries)
        for n, entries in enumerate(adjustments or [], start=1)
    )
    return session


@service
def tuning_sample_record(
    *,
    session: TuningSession,
    phase: str,
    sample: Sample,
    adjustment: TuningAdjustment | None = None,
) -> TuningSample:
    locked = TuningSession.objects.select_for_update().get(pk=session.pk)
    seq = locked.samples.count() + 1
    return TuningSample.objects.create(
        session=locked,
        adjustment=adjustment,
        phase=phase,
        seq=seq,
        taken_at=timezone.now(),
        **sample.as_dict(),
    )


@service
def tuning_adjustment_decide(
    *,
    adjustment: TuningAdjustment,
    status: str,
    message: str,
    change_set=None,
    reference: float | None = None,
    median: float | None = None,
    improvement: float | None = None,
    stabilised: bool = False,
    waited: float | None = None,
) -> TuningAdjustment:
    locked = (
        TuningAdjustment.objects.select_for_update()
        .select_related("session__run__change")
        .get(pk=adjustment.pk)
    )
    locked.status = status
    locked.message = message[:5000]
    locked.change_set = change_set
    locked.reference_median = reference
    locked.median = median
    locked.improvement_percent = improvement
    locked.stabilised = stabilised
    locked.stabilise_seconds = waited
    locked.save()
    audit_record(
        action=f"dbops.tuning.adjustment_{status.lower()}",
        username=WORKER,
        obj=locked.session.run.change,
        details={
            "session": locked.session_id,
            "adjustment": locked.position,
            "entries": locked.entries,
            "median": median,
            "reference": reference,
            "improvement_percent": improvement,
            "message": message[:1000],
        },
    )
    return locked


@service
def tuning_session_finish(
    *,
    session: TuningSession,
    status: str,
    message: str = "",
    baseline: float | None = None,
    final: float | None = None,
    improvement: float | None = None,
) -> TuningSession:
    locked = (
        TuningSession.objects.select_for_update().select_related("run__change").get(pk=session.pk)
    )
    locked.status = status
    locked.message = message[:5000]
    if baseline is not None:
        locked.baseline_median = baseline
    if final is not None:
        locked.final_median = final
    if improvement is not None:
        locked.improvement_percent = improvement
    locked.finished_at = timezone.now()
    locked.save()
    if locked.purpose == TuningSession.Purpose.TUNING:
        audit_record(
            action="dbops.tuning.finished",
            username=WORKER,
            obj=locked.run.change,
            outcome=AuditEvent.Outcome.SUCCESS
            if status == TuningSession.Status.COMPLETED
            else AuditEvent.Outcome.FAILURE,
            details={
                "session": locked.pk,
                "metric": locked.metric,
                "baseline_median": locked.baseline_median,
                "final_median": locked.final_median,
                "improvement_percent": locked.improvement_percent,
                "message": message[:1000],
            },
        )
    return locked
