"""The "Configuration change" procedure: applies one change set inside its approved
change, in an open window, every step recorded.

pre-checks: the per-target lock; the set validated again against the target now.
steps: observe before; snapshot; ALTER SYSTEM each, check pg_file_settings, reload,
verify each (or restore all); the approved restart when a setting needs one and the
target is restartable. verification: each value through pg_settings; observe after.
rollback: restore the snapshot (and restart again if the server was restarted).
"""

from __future__ import annotations

from typing import Any

import psycopg
from django import forms

from dbops.configuration import apply as configuration
from dbops.configuration import restart as restarting
from dbops.configuration import services, session
from dbops.configuration.facts import is_local
from dbops.configuration.models import ConfigurationChangeSet
from dbops.configuration.validation import validate_on
from dbops.connections import query_failure
from dbops.procedures.common import TargetQueue
from maintenance.procedures import register
from maintenance.procedures.base import Procedure, RunContext, StepFailed, StepSpec

RESULT_TEMPLATE = "dbops/_procedure_result.html"
OBSERVE_SAMPLES = 3
OBSERVE_SECONDS = 1.0


class ConfigurationChangeForm(forms.Form):
    change_set = forms.IntegerField(label="Configuration change set", min_value=1)
    observe_samples = forms.IntegerField(
        label="Samples observed before and after", min_value=0, max_value=20, required=False
    )
    observe_seconds = forms.FloatField(
        label="Seconds per sample", min_value=0.2, max_value=60, required=False
    )

    def clean_change_set(self) -> int:
        pk = self.cleaned_data["change_set"]
        if not ConfigurationChangeSet.objects.filter(pk=pk).exists():
            raise forms.ValidationError("No such configuration change set.")
        return pk


def _set(ctx: RunContext) -> ConfigurationChangeSet:
    change_set = (
        ConfigurationChangeSet.objects.select_related("target")
        .filter(pk=ctx.params.get("change_set"))
        .first()
    )
    if change_set is None:
        raise StepFailed("The configuration change set no longer exists.")
    if change_set.change_id != ctx.change_id:
        raise StepFailed("This configuration change set belongs to another change: refused.")
    return change_set


def _entries(change_set: ConfigurationChangeSet) -> list:
    return list(change_set.entries.order_by("position"))


def _planned(change_set: ConfigurationChangeSet) -> list[configuration.Planned]:
    return [
        configuration.Planned(e.parameter, e.new_value, e.normalized) for e in _entries(change_set)
    ]


def _contexts(change_set: ConfigurationChangeSet) -> dict[str, str]:
    return {e.parameter: e.context for e in _entries(change_set)}


def revalidate(ctx: RunContext) -> dict[str, Any]:
    change_set = _set(ctx)
    entries = [(e.parameter, e.new_value) for e in _entries(change_set)]
    validation = validate_on(session.open_conn(ctx), change_set.target, entries)
    services.configuration_set_revalidated(
        change_set=change_set, validation=validation, run_id=ctx.run_id
    )
    result = {
        "verdicts": [v.as_dict() for v in validation.verdicts],
        "values_now": {e.parameter: e.current for e in validation.entries},
    }
    for v in validation.verdicts:
        ctx.log(f"{'PASS' if v.passed else 'FAIL'} {v.rule} {v.parameter}: {v.message}\n")
    if not validation.ok:
        raise StepFailed("Validation at apply refused the set: " + validation.summary(), result)
    return result


def observe(phase: str):
    def step(ctx: RunContext) -> dict[str, Any]:
        from dbops.tuning import metrics
        from dbops.tuning import services as tuning
        from dbops.tuning.models import TuningSession

        samples = int(ctx.params.get("observe_samples", OBSERVE_SAMPLES) or 0)
        seconds = float(ctx.params.get("observe_seconds") or OBSERVE_SECONDS)
        change_set = _set(ctx)
        host = is_local(change_set.target)
        if "observation" not in ctx.state:
            ctx.state["observation"] = tuning.tuning_session_start(
                run_id=ctx.run_id,
                target=change_set.target,
                purpose=TuningSession.Purpose.OBSERVATION,
                change_set=change_set,
                metric="tps",
                settings={"samples": samples, "sample_seconds": seconds},
                host_metrics=host,
            ).pk
        observation = TuningSession.objects.get(pk=ctx.state["observation"])
        conn = session.open_conn(ctx)
        taken = []
        for _ in range(samples):
            sample = metrics.observe(conn, seconds, host=host)
            tuning.tuning_sample_record(session=observation, phase=phase, sample=sample)
            taken.append(sample.as_dict())
            ctx.check_stop()
        if phase == "AFTER":
            tuning.tuning_session_finish(session=observation, status=TuningSession.Status.COMPLETED)
        return {"samples": len(taken)}

    return step


def snapshot(ctx: RunContext) -> dict[str, Any]:
    change_set = _set(ctx)
    try:
        taken = configuration.take_snapshot(session.open_conn(ctx))
    except psycopg.Error as exc:
        raise StepFailed(
            f"The snapshot cannot be taken: {query_failure(exc)}. Applying configuration "
            "needs a superuser, or a role granted SELECT on pg_file_settings, EXECUTE on "
            "pg_reload_conf() and ALTER SYSTEM on the parameters."
        ) from None
    services.configuration_set_snapshot_record(change_set=change_set, snapshot=taken)
    ctx.state["snapshotted"] = True
    rollbacks = {
        e.parameter: (
            "RESET" if taken.auto_conf(e.parameter) is None else taken.auto_conf(e.parameter)
        )
        for e in _entries(change_set)
    }
    for name, value in rollbacks.items():
        ctx.log(f"rollback of {name}: {value}\n")
    return {"settings": len(taken.settings), "files": len(taken.files), "rollback": rollbacks}


def apply_each(ctx: RunContext) -> dict[str, Any]:
    change_set = _set(ctx)
    stored = configuration.Snapshot.from_json(change_set.snapshot)
    try:
        outcome = configuration.apply_set(
            session.open_conn(ctx),
            _planned(change_set),
            log=ctx.log,
            contexts=_contexts(change_set),
            snapshot=stored,
        )
    except configuration.ApplyFailed as exc:
        ctx.state["restored"] = bool(exc.restored)
        services.configuration_set_rolled_back(
            change_set=change_set, reason=exc.message, problems=exc.restore_problems
        )
        raise StepFailed(
            exc.message,
            {
                "failed": exc.parameter,
                "stage": exc.stage,
                "restored": exc.restored,
                "not_restored": exc.restore_problems,
            },
        ) from None
    ctx.state["applied"] = True
    pending = [v.parameter for v in outcome.verified if v.pending_restart]
    ctx.state["pending_restart"] = pending
    if pending and not change_set.target.restartable:
        ctx.log(
            f"Pending restart: {', '.join(pending)}. The target's health page shows them "
            "until the server restarts.\n"
        )
    return {
        "statements": outcome.statements,
        "verified": [v.__dict__ for v in outcome.verified],
        "pending_restart": pending,
    }


def restart(ctx: RunContext) -> dict[str, Any]:
    change_set = _set(ctx)
    session.close(ctx)  # the restart ends the session (and its advisory lock)
    try:
        result = restarting.restart(change_set.target, log=ctx.log)
    except restarting.RestartFailed as exc:
        raise StepFailed(f"Restart failed: {exc.message}", {"output": exc.output[-2000:]}) from None
    ctx.state["restarted"] = True
    ctx.state["restart_result"] = result
    session.lock(ctx)
    return result


def verify_each(ctx: RunContext) -> dict[str, Any]:
    change_set = _set(ctx)
    verified = configuration.verify(session.open_conn(ctx), _planned(change_set))
    restarted = bool(ctx.state.get("restarted"))
    bad = [v for v in verified if not v.ok or (restarted and v.pending_restart)]
    result = {"verified": [v.__dict__ for v in verified]}
    for v in verified:
        ctx.log(f"{v.parameter}: {v.message}\n")
    if bad:
        raise StepFailed(
            "Verification failed: " + "; ".join(f"{v.parameter}: {v.message}" for v in bad),
            result,
        )
    services.configuration_set_applied(change_set=change_set, verified=verified)
    if restarted:
        services.configuration_set_restarted(
            change_set=change_set, result=ctx.state.get("restart_result", {}), verified=verified
        )
    return result


def restore(ctx: RunContext) -> dict[str, Any]:
    change_set = _set(ctx)
    if not ctx.state.get("snapshotted"):
        return {"restored": "nothing was changed"}
    snap = configuration.Snapshot.from_json(change_set.snapshot)
    names = [e.parameter for e in _entries(change_set)]
    conn = session.open_conn(ctx)
    if ctx.state.get("restored"):
        problems = configuration.snapshot_differences(conn, snap, names)
    else:
        problems = configuration.restore(
            conn, snap, names, log=ctx.log, contexts=_contexts(change_set)
        )
        if not problems and ctx.state.get("restarted") and change_set.restart_required:
            # The old postmaster values come back only with another restart.
            session.close(ctx)
            try:
                restarting.restart(change_set.target, log=ctx.log)
            except restarting.RestartFailed as exc:
                problems.append(f"restart: {exc.message}")
            else:
                problems = configuration.snapshot_differences(session.open_conn(ctx), snap, names)
        services.configuration_set_rolled_back(
            change_set=change_set, reason="The run failed after the apply.", problems=problems
        )
    if problems:
        raise StepFailed("The snapshot is not back: " + "; ".join(problems))
    return {"restored": names}


@register
class ConfigurationChangeProcedure(TargetQueue, Procedure):
    kind = services.PROCEDURE_KIND
    label = "Configuration change"
    description = (
        "Applies a validated configuration change set: ALTER SYSTEM each entry, reload, "
        "verify each through pg_settings, or restore every entry."
    )
    form_class = ConfigurationChangeForm
    has_rollback = True
    result_template = RESULT_TEMPLATE

    def to_json(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        change_set = ConfigurationChangeSet.objects.get(pk=cleaned["change_set"])
        samples = cleaned.get("observe_samples")
        return {
            "change_set": change_set.pk,
            "target": change_set.target_id,
            "observe_samples": OBSERVE_SAMPLES if samples is None else samples,
            "observe_seconds": cleaned.get("observe_seconds") or OBSERVE_SECONDS,
        }

    def summary(self, params: dict[str, Any]) -> str:
        change_set = (
            ConfigurationChangeSet.objects.select_related("target")
            .filter(pk=params.get("change_set"))
            .first()
        )
        if change_set is None:
            return "Configuration change (set missing)"
        entries = _entries(change_set)
        text = ", ".join(f"{e.parameter} = {e.new_value}" for e in entries)
        restart = [e.parameter for e in entries if e.restart_required]
        tail = ""
        if restart:
            tail = f" — restart required ({', '.join(restart)}): " + (
                "the procedure restarts the server"
                if change_set.target.restartable
                else "pending until the server restarts"
            )
        return f"ALTER SYSTEM on {change_set.target.name}: {text}{tail}"

    def max_minutes(self, params: dict[str, Any]) -> int:
        return 15

    def prechecks(self, ctx: RunContext) -> list[StepSpec]:
        return [
            StepSpec("Per-target lock", session.lock),
            StepSpec("Validate the set again", revalidate),
        ]

    def steps(self, ctx: RunContext) -> list[StepSpec]:
        change_set = _set(ctx)
        specs = []
        if int(ctx.params.get("observe_samples", OBSERVE_SAMPLES) or 0):
            specs.append(StepSpec("Observe the server before", observe("BEFORE")))
        specs += [
            StepSpec("Snapshot pg_settings and pg_file_settings", snapshot),
            StepSpec("ALTER SYSTEM each entry, reload, verify", apply_each),
        ]
        if change_set.restart_required and change_set.target.restartable:
            specs.append(StepSpec("Restart the server (approved with the change)", restart))
        return specs

    def verify(self, ctx: RunContext) -> list[StepSpec]:
        specs = [StepSpec("Each value through pg_settings", verify_each)]
        if int(ctx.params.get("observe_samples", OBSERVE_SAMPLES) or 0):
            specs.append(StepSpec("Observe the server after", observe("AFTER")))
        return specs

    def rollback(self, ctx: RunContext) -> list[StepSpec]:
        return [StepSpec("Restore the snapshot", restore)]

    def cleanup(self, ctx: RunContext) -> None:
        session.close(ctx)
