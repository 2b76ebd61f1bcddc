"""Runs one procedure inside a worker: pre-checks, steps, verification, rollback.

Every step is a StepRun row with its timings and output. A heartbeat thread keeps the
run's heartbeat fresh, flushes output and progress so operators see them live, and
watches for a request to stop (the window's cutoff under a CANCEL policy, or the worker
shutting down): then it sets the run's stop event, which the work honours by cancelling
its statement or ending its script's process group.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from maintenance import services
from maintenance.models import Cutoff, ProcedureRun, StepRun
from maintenance.procedures import registry
from maintenance.procedures.base import RunContext, StepFailed, StepSpec, StepStopped
from maintenance.services.runs import step_process_record
from portal.redaction import redact, redact_data

logger = logging.getLogger(__name__)
MAX_STEP_OUTPUT = 1_000_000
# A periodic flush holds back an unfinished line (so redaction sees a secret whole)
# unless it grows past this.
MAX_HELD_LINE = 65_536


class _Live:
    """Output buffer, progress and heartbeat for the step being run."""

    def __init__(self, run: ProcedureRun, ctx_stop: threading.Event, reason: list[str]):
        self.run_id = run.pk
        self.window_end = run.execution.window.end
        self.cancel_at_cutoff = run.execution.window.cutoff_behavior == Cutoff.CANCEL
        self.lock = threading.Lock()
        # The heartbeat and the step's end both flush: one at a time, so each appends
        # its chunk after the other's (in order, none written over).
        self.flushing = threading.Lock()
        self.step_id: int | None = None
        self.buffer: list[str] = []
        self.progress: int | None = None
        self.detail: dict[str, Any] | None = None
        self.stop = threading.Event()
        self.work_stop = ctx_stop
        self.reason = reason

    def log(self, text: str) -> None:
        with self.lock:
            self.buffer.append(text)

    def flush(self, *, whole_lines: bool = False) -> None:
        with self.flushing:
            self._flush(whole_lines=whole_lines)

    def _flush(self, *, whole_lines: bool) -> None:
        with self.lock:
            text = "".join(self.buffer)
            cut = len(text)
            if whole_lines and len(text) - (text.rfind("\n") + 1) < MAX_HELD_LINE:
                cut = text.rfind("\n") + 1
            chunk, self.buffer = redact(text[:cut]), [text[cut:]] if text[cut:] else []
            step_id, progress, detail = self.step_id, self.progress, self.detail
        now = timezone.now()
        fields: dict[str, Any] = {"heartbeat_at": now}
        if progress is not None:
            fields["progress"] = progress
        if detail is not None:
            fields["progress_detail"] = detail
        ProcedureRun.objects.filter(pk=self.run_id, status=ProcedureRun.Status.RUNNING).update(
            **fields
        )
        if chunk and step_id:
            step = StepRun.objects.get(pk=step_id)
            if len(step.output) < MAX_STEP_OUTPUT:
                step.output = (step.output + chunk)[:MAX_STEP_OUTPUT]
                step.save(update_fields=["output"])
        self._check_stop(now)

    def _check_stop(self, now) -> None:
        if self.work_stop.is_set():
            return
        row = (
            ProcedureRun.objects.filter(pk=self.run_id)
            .values("stop_at", "stop_reason", "status")
            .first()
        )
        reason = ""
        if row and row["stop_at"] is not None and row["stop_at"] <= now:
            reason = row["stop_reason"] or "CUTOFF"
        elif self.cancel_at_cutoff and now >= self.window_end:
            reason = "CUTOFF"
        if reason:
            self.reason.append(reason)
            self.work_stop.set()

    def beat_forever(self) -> None:
        while not self.stop.wait(settings.RUN_HEARTBEAT_SECONDS):
            try:
                close_old_connections()
                self.flush(whole_lines=True)
            except Exception:
                logger.exception("run %s: heartbeat failed", self.run_id)
        connection.close()


def _still_ours(run_id: int) -> bool:
    return ProcedureRun.objects.filter(pk=run_id, status=ProcedureRun.Status.RUNNING).exists()


def _run_phase(
    kind: str, specs: list[StepSpec], ctx: RunContext, live: _Live, position: list[int]
) -> None:
    """Run the specs in order as StepRuns; raise StepFailed at the first failure (at the
    end of the phase for steps that continue on failure)."""
    outputs = ctx.state.setdefault("output_of", {})
    deferred: list[StepFailed] = []
    for spec in specs:
        if kind != StepRun.Kind.ROLLBACK:
            ctx.check_stop()
        position[0] += 1
        step = StepRun.objects.create(
            run_id=ctx.run_id,
            position=position[0],
            kind=kind,
            name=spec.name[:200],
            status=StepRun.Status.RUNNING,
            started_at=timezone.now(),
        )
        with live.lock:
            live.step_id = step.pk
        try:
            result = spec.run(ctx) or {}
            status, error = StepRun.Status.SUCCEEDED, None
        except StepFailed as exc:
            result, status, error = exc.result, StepRun.Status.FAILED, exc
        except Exception as exc:  # a procedure's bug must fail the step, not the worker
            logger.exception("run %s: step %r crashed", ctx.run_id, spec.name)
            result = {"exception": type(exc).__name__}
            status, error = StepRun.Status.FAILED, StepFailed(f"{type(exc).__name__}: {exc}")
        live.flush()
        step.refresh_from_db(fields=["output"])
        outputs[kind] = outputs.get(kind, "") + step.output
        step.status = status
        step.finished_at = timezone.now()
        step.result = redact_data(result)
        if error is not None:
            step.output = (step.output + f"\n{redact(error.message)}").strip()[:MAX_STEP_OUTPUT]
        step.save(update_fields=["status", "finished_at", "result", "output"])
        if error is not None and not spec.continue_on_failure:
            raise error
        if error is not None:
            deferred.append(error)
        if kind != StepRun.Kind.ROLLBACK and not _still_ours(ctx.run_id):
            raise StepFailed("The run was interrupted; stopping here.")
    if deferred:
        raise StepFailed("\n".join(e.message for e in deferred))


def worker_id(node: str = "") -> str:
    """ "<celery node>|<host>:<pid>": the node says which worker a stop concerns."""
    return f"{node or 'worker'}|{socket.gethostname()}:{os.getpid()}"


def execute_run(*, run_id: int, node: str = "") -> str:
    """Entry point of the ``maintenance.execute_run`` task. Safe to deliver twice."""
    run = services.run_claim(run_id=run_id, worker=worker_id(node))
    if run is None:
        return "not claimed"
    procedure = registry.get(run.procedure.kind)
    if procedure.manual:
        services.run_wait_for_operator(run=run, steps=procedure.checklist(run.procedure.params))
        return "waiting"
    stop = threading.Event()
    reason: list[str] = []
    live = _Live(run, stop, reason)
    beat = threading.Thread(target=live.beat_forever, name=f"run-{run.pk}-heartbeat", daemon=True)
    beat.start()

    def started(**what) -> None:
        if live.step_id is not None:
            step_process_record(step_id=live.step_id, **what)

    def set_detail(detail: dict[str, Any]) -> None:
        with live.lock:
            live.detail = detail

    ctx = RunContext(
        run_id=run.pk,
        params=run.procedure.params,
        change_id=run.change_id,
        window_end=run.execution.window.end,
        log=live.log,
        set_progress=lambda pct: setattr(live, "progress", max(0, min(100, int(pct)))),
        set_progress_detail=set_detail,
        started=started,
        stop=stop,
        stop_reason=reason,
    )
    position = [0]
    status, error, phase = ProcedureRun.Status.SUCCEEDED, "", "PRECHECK"
    try:
        _run_phase(StepRun.Kind.PRECHECK, procedure.prechecks(ctx), ctx, live, position)
        phase = "STEP"
        _run_phase(StepRun.Kind.STEP, procedure.steps(ctx), ctx, live, position)
        phase = "VERIFY"
        _run_phase(StepRun.Kind.VERIFY, procedure.verify(ctx), ctx, live, position)
    except StepFailed as exc:
        error = exc.message
        status = ProcedureRun.Status.FAILED
        stopped_for_worker = isinstance(exc, StepStopped) and "WORKER_STOP" in reason
        if stopped_for_worker:
            # Cut off mid-way by a stopping worker: nothing is undone behind the
            # operator's back; the run waits for their retry or abandon.
            status = ProcedureRun.Status.INTERRUPTED
        elif phase != "PRECHECK" and _still_ours(run.pk):
            rollback = procedure.rollback(ctx)
            if rollback:
                # The rollback runs to its end: the stop that ended the work (the cutoff)
                # must not end the undoing too. The heartbeat keeps watching the old event.
                ctx.stop = threading.Event()
                try:
                    _run_phase(StepRun.Kind.ROLLBACK, rollback, ctx, live, position)
                    status = ProcedureRun.Status.ROLLED_BACK
                except StepFailed as rb_exc:
                    error += f"\nRollback failed too: {rb_exc.message}"
        if isinstance(exc, StepStopped) and "CUTOFF" in reason:
            status = ProcedureRun.Status.CANCELLED
    finally:
        try:
            procedure.cleanup(ctx)
        except Exception:
            logger.exception("run %s: cleanup failed", run.pk)
        live.stop.set()
        beat.join(timeout=settings.RUN_HEARTBEAT_SECONDS + 5)
        try:
            live.flush()
        except Exception:
            logger.exception("run %s: final flush failed", run.pk)
    result = {k: v for k, v in ctx.state.items() if k != "output_of" and _jsonable(v)}
    services.run_finish(run=run, status=status, error=redact(error), result=redact_data(result))
    return status


def _jsonable(value: Any) -> bool:
    """Connections and other live objects a step kept in the state are not results."""
    return isinstance(value, (str, int, float, bool, list, dict, type(None)))
