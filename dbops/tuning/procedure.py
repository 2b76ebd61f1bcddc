"""The "System tuning" procedure (seed: SystemTuning / tuneSystem) for a target.

pre-checks: the per-target lock; every adjustment validated again as a configuration
change. steps: prepare the declared workload in a scratch schema; baseline (N
samples); each adjustment applied as its own configuration set, stabilised, measured,
kept only if the median improved beyond the noise threshold, else rolled back.
verification: the final samples against the baseline, and the kept settings still in
effect. rollback: every kept adjustment restored, last first.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django import forms

from dbops.configuration import apply as configuration
from dbops.configuration import services as config_services
from dbops.configuration import session
from dbops.configuration.facts import is_local
from dbops.configuration.models import ConfigurationChangeSet
from dbops.configuration.procedure import RESULT_TEMPLATE
from dbops.configuration.validation import validate_on
from dbops.models import DatabaseTarget
from dbops.procedures.common import TargetQueue
from dbops.tuning import services
from dbops.tuning import workload as workloads
from dbops.tuning.forms import SystemTuningForm
from dbops.tuning.loop import Loop, LoopSettings
from dbops.tuning.metrics import METRICS
from dbops.tuning.models import TuningAdjustment, TuningSession
from maintenance.procedures import register
from maintenance.procedures.base import Procedure, RunContext, StepFailed, StepSpec


def _workload(ctx: RunContext) -> workloads.Workload:
    return workloads.Workload.from_params(ctx.params, f"portal_tuning_{ctx.run_id}")


def _session(ctx: RunContext) -> TuningSession:
    return TuningSession.objects.select_related("target").get(pk=ctx.state["session"])


def _adjustments(ctx: RunContext) -> list[list[tuple[str, str]]]:
    return [[(p, v) for p, v in adj] for adj in ctx.params.get("adjustments") or []]


def _loop(ctx: RunContext) -> Loop:
    tuning = _session(ctx)
    target = tuning.target
    work = _workload(ctx)
    settings = LoopSettings.from_params(ctx.params)
    host = tuning.host_metrics

    def measure(phase: str, index: int | None) -> float | None:
        adjustment = TuningAdjustment.objects.get(session=tuning, position=index) if index else None
        try:
            sample = workloads.run(
                target, work, settings.sample_seconds, session.open_conn(ctx), host=host
            )
        except workloads.WorkloadFailed as exc:
            raise StepFailed(f"The workload failed: {exc.message}") from None
        services.tuning_sample_record(
            session=tuning, phase=phase, sample=sample, adjustment=adjustment
        )
        ctx.check_stop()
        return sample.value(tuning.metric)

    return Loop(
        settings=settings,
        metric=tuning.metric,
        higher_is_better=tuning.higher_is_better,
        measure=measure,
        log=ctx.log,
    )


def revalidate(ctx: RunContext) -> dict[str, Any]:
    from changes.models import ChangeRequest

    target = session.target_of(ctx)
    # The approvers saw the change's impact: it must name the database being tuned.
    if not ChangeRequest.objects.filter(pk=ctx.change_id, components=target.component).exists():
        raise StepFailed(
            f"The change does not name {target.component.name} in its impact: refused."
        )
    conn = session.open_conn(ctx)
    results, problems = [], []
    for number, adjustment in enumerate(_adjustments(ctx), start=1):
        validation = validate_on(conn, target, adjustment)
        results.append([v.as_dict() for v in validation.verdicts])
        for v in validation.failures:
            problems.append(f"adjustment {number}: {v.rule} {v.parameter}: {v.message}")
        for name in validation.restart_required:
            problems.append(f"adjustment {number}: {name} needs a restart")
    if problems:
        raise StepFailed("Adjustments refused at apply: " + "; ".join(problems))
    return {"adjustments": results}


def prepare(ctx: RunContext) -> dict[str, Any]:
    target = session.target_of(ctx)
    work = _workload(ctx)
    metric = ctx.params.get("metric", "tps")
    tuning = services.tuning_session_start(
        run_id=ctx.run_id,
        target=target,
        purpose=TuningSession.Purpose.TUNING,
        resource=ctx.params.get("resource", TuningSession.Resource.CPU),
        metric=metric,
        higher_is_better=METRICS.get(metric, ("", True))[1],
        workload=work.describe(),
        settings=LoopSettings.from_params(ctx.params).as_dict(),
        host_metrics=is_local(target),
        adjustments=[[list(p) for p in adj] for adj in _adjustments(ctx)],
    )
    ctx.state["session"] = tuning.pk
    ctx.state["kept"] = []
    try:
        described = workloads.prepare(target, work, log=ctx.log)
    except workloads.WorkloadFailed as exc:
        raise StepFailed(exc.message) from None
    ctx.state["prepared"] = True
    return {"session": tuning.pk, "workload": described}


def baseline(ctx: RunContext) -> dict[str, Any]:
    value = _loop(ctx).baseline()
    ctx.state["baseline"] = ctx.state["reference"] = value
    TuningSession.objects.filter(pk=ctx.state["session"]).update(baseline_median=value)
    return {"metric": _session(ctx).metric, "baseline_median": value}


def adjust(position: int):
    def step(ctx: RunContext) -> dict[str, Any]:
        tuning = _session(ctx)
        adjustment = TuningAdjustment.objects.get(session=tuning, position=position)
        entries = [(p, v) for p, v in adjustment.entries]
        conn = session.open_conn(ctx)
        validation = validate_on(conn, tuning.target, entries)
        if not validation.ok or validation.restart_required:
            services.tuning_adjustment_decide(
                adjustment=adjustment,
                status=TuningAdjustment.Status.REFUSED,
                message=validation.summary(),
            )
            return {"status": "REFUSED", "message": validation.summary()}
        change_set = config_services.configuration_set_for_run(
            target=tuning.target, change_id=ctx.change_id, run_id=ctx.run_id, validation=validation
        )
        snap = configuration.take_snapshot(conn)
        config_services.configuration_set_snapshot_record(change_set=change_set, snapshot=snap)
        planned = [
            configuration.Planned(e.parameter, e.value, e.normalized) for e in validation.entries
        ]
        contexts = {e.parameter: e.info.context for e in validation.entries}
        try:
            outcome = configuration.apply_set(
                conn, planned, log=ctx.log, contexts=contexts, snapshot=snap
            )
        except configuration.ApplyFailed as exc:
            config_services.configuration_set_rolled_back(
                change_set=change_set, reason=exc.message, problems=exc.restore_problems
            )
            services.tuning_adjustment_decide(
                adjustment=adjustment,
                status=TuningAdjustment.Status.FAILED,
                message=exc.message,
                change_set=change_set,
            )
            if exc.restore_problems:
                raise StepFailed(f"{exc.message}; not restored: {exc.restore_problems}") from None
            return {"status": "FAILED", "message": exc.message}
        config_services.configuration_set_applied(change_set=change_set, verified=outcome.verified)
        names = [p.parameter for p in planned]
        try:
            decision = _loop(ctx).judge(position, ctx.state["reference"])
        except StepFailed as exc:
            # Not judged (the workload failed): this adjustment goes back before the
            # run's rollback undoes the kept ones.
            problems = configuration.restore(
                session.open_conn(ctx), snap, names, log=ctx.log, contexts=contexts
            )
            config_services.configuration_set_rolled_back(
                change_set=change_set, reason=exc.message, problems=problems
            )
            services.tuning_adjustment_decide(
                adjustment=adjustment,
                status=TuningAdjustment.Status.FAILED,
                message=exc.message,
                change_set=change_set,
            )
            raise
        if decision.kept:
            ctx.state["reference"] = decision.median
            ctx.state["kept"].append(change_set.pk)
            status = TuningAdjustment.Status.KEPT
        else:
            problems = configuration.restore(
                session.open_conn(ctx),
                snap,
                [p.parameter for p in planned],
                log=ctx.log,
                contexts=contexts,
            )
            config_services.configuration_set_rolled_back(
                change_set=change_set, reason=decision.message, problems=problems
            )
            if problems:
                raise StepFailed("Rolling the adjustment back failed: " + "; ".join(problems))
            status = TuningAdjustment.Status.ROLLED_BACK
        services.tuning_adjustment_decide(
            adjustment=adjustment,
            status=status,
            message=decision.message,
            change_set=change_set,
            reference=decision.reference,
            median=decision.median,
            improvement=round(decision.improvement, 2),
            stabilised=decision.stabilised,
            waited=round(decision.waited, 2),
        )
        return {
            "status": status,
            "median": decision.median,
            "reference": decision.reference,
            "improvement_percent": round(decision.improvement, 2),
            "stabilised": decision.stabilised,
        }

    return step


def final(ctx: RunContext) -> dict[str, Any]:
    tuning = _session(ctx)
    value, gain, ok = _loop(ctx).final(ctx.state["baseline"])
    kept_sets = ConfigurationChangeSet.objects.filter(pk__in=ctx.state.get("kept", []))
    drifted = []
    conn = session.open_conn(ctx)
    for change_set in kept_sets:
        planned = [
            configuration.Planned(e.parameter, e.new_value, e.normalized)
            for e in change_set.entries.all()
        ]
        drifted += [v.message for v in configuration.verify(conn, planned) if not v.ok]
    message = (
        f"Final median {tuning.metric} {value:.3f} against the baseline "
        f"{ctx.state['baseline']:.3f}: {gain:+.1f}%."
    )
    ok = ok and not drifted
    services.tuning_session_finish(
        session=tuning,
        status=TuningSession.Status.COMPLETED if ok else TuningSession.Status.FAILED,
        message=message + (f" Drifted: {'; '.join(drifted)}" if drifted else ""),
        final=value,
        improvement=round(gain, 2),
    )
    ctx.log(message + "\n")
    result = {"final_median": value, "baseline_median": ctx.state["baseline"], "gain": gain}
    if drifted:
        raise StepFailed("Kept settings are no longer in effect: " + "; ".join(drifted), result)
    if not ok:
        raise StepFailed(message + " Worse than the baseline beyond the noise.", result)
    return result


def undo_kept(ctx: RunContext) -> dict[str, Any]:
    conn = session.open_conn(ctx)
    undone, problems = [], []
    for pk in reversed(ctx.state.get("kept", [])):
        change_set = ConfigurationChangeSet.objects.get(pk=pk)
        names = list(change_set.entries.values_list("parameter", flat=True))
        left = configuration.restore(
            conn,
            configuration.Snapshot.from_json(change_set.snapshot),
            names,
            log=ctx.log,
            contexts=dict(change_set.entries.values_list("parameter", "context")),
        )
        config_services.configuration_set_rolled_back(
            change_set=change_set,
            reason="The tuning run failed; its kept adjustments are undone.",
            problems=left,
        )
        problems += left
        undone.append(pk)
    if "session" in ctx.state:
        tuning = _session(ctx)
        if tuning.status == TuningSession.Status.RUNNING:
            services.tuning_session_finish(
                session=tuning, status=TuningSession.Status.FAILED, message="Run failed."
            )
    if problems:
        raise StepFailed("Not restored: " + "; ".join(problems))
    return {"undone": undone}


@register
class SystemTuning(TargetQueue, Procedure):
    kind = "db_system_tuning"
    label = "System tuning"
    description = (
        "Baseline, then each adjustment applied, stabilised, measured and kept only if "
        "it beats the noise; final verification against the baseline."
    )
    form_class = SystemTuningForm
    has_rollback = True
    result_template = RESULT_TEMPLATE

    def params_from(self, form: forms.Form) -> dict[str, Any]:
        return form.params()

    def summary(self, params: dict[str, Any]) -> str:
        target = DatabaseTarget.objects.filter(pk=params.get("target")).first()
        adjustments = "; ".join(
            ", ".join(f"{p} = {v}" for p, v in adj) for adj in params.get("adjustments") or []
        )
        return (
            f"System tuning ({params.get('resource')}) on "
            f"{target.name if target else '(missing target)'} by {params.get('metric')} of "
            f"the {params.get('workload')} workload: {adjustments}"
        )

    def max_minutes(self, params: dict[str, Any]) -> int:
        settings = LoopSettings.from_params(params)
        per_sample = settings.sample_seconds + 1
        adjustments = len(params.get("adjustments") or [])
        seconds = per_sample * settings.samples * (2 + adjustments) + adjustments * (
            settings.max_stabilise_seconds + settings.min_stabilise_seconds
        )
        return int(seconds // 60) + 5

    def prechecks(self, ctx: RunContext) -> list[StepSpec]:
        return [
            StepSpec("Per-target lock", session.lock),
            StepSpec("Validate the adjustments again", revalidate),
        ]

    def steps(self, ctx: RunContext) -> list[StepSpec]:
        specs = [
            StepSpec("Prepare the workload in a scratch schema", prepare),
            StepSpec(f"Baseline: {LoopSettings.from_params(ctx.params).samples} samples", baseline),
        ]
        for n, adjustment in enumerate(_adjustments(ctx), start=1):
            text = ", ".join(f"{p} = {v}" for p, v in adjustment)
            specs.append(StepSpec(f"Adjustment {n}: {text}", adjust(n)))
        return specs

    def verify(self, ctx: RunContext) -> list[StepSpec]:
        return [StepSpec("Final verification against the baseline", final)]

    def rollback(self, ctx: RunContext) -> list[StepSpec]:
        return [StepSpec("Roll back the kept adjustments", undo_kept)]

    def cleanup(self, ctx: RunContext) -> None:
        if ctx.state.pop("prepared", False):
            with contextlib.suppress(Exception):
                workloads.drop(session.target_of(ctx), _workload(ctx))
        session.close(ctx)
