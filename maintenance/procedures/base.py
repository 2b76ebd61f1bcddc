"""What a procedure kind declares, and the context its steps run with.

A kind declares its parameters (a form), its impact and whether it needs downtime (seed
DatabaseMaintenance.impact / requiresDowntime), how long it may take (for the window's
cutoff), pre-checks, steps, verification, an optional rollback, the figures its results
show on run pages and reports, and the queue its runs go to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError


class StepFailed(Exception):
    """A step, check or verification did not pass; the message says why."""

    def __init__(self, message: str, result: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.result = result or {}


class StepStopped(StepFailed):
    """The work was stopped on request (the window's cutoff, the worker stopping)."""


class ParamsRefused(ValidationError):
    """The parameters name something this user may not use (a database target they may
    not see): refused and audited, not merely invalid."""

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details


class ProcedureForm(forms.Form):
    """Parameter forms know who fills them in, so their choices are what that user may
    use (the same rule as the pages that list those things)."""

    def __init__(self, *args, user=None, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        # Set by a form when the data named something hidden from the user.
        self.refusal: ParamsRefused | None = None


@dataclass
class StepSpec:
    name: str
    run: Callable[[RunContext], dict[str, Any] | None]
    # The phase goes on to the next step after this one fails, and fails at its end:
    # independent units (one component's security update) must not stop the others.
    continue_on_failure: bool = False


@dataclass(frozen=True)
class Figure:
    """A labelled table of a run's results (verification figures), for pages and
    reports: no raw dicts shown to people."""

    title: str
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class RunContext:
    """Handed to every step: parameters, shared state, output and progress hooks, and
    the stop request (cutoff, worker stopping) the work must honour."""

    run_id: int
    params: dict[str, Any]
    change_id: int
    window_end: Any
    log: Callable[[str], None]
    set_progress: Callable[[int], None]
    # Progress detail of the statement working now (phase, blocks done/total).
    set_progress_detail: Callable[[dict[str, Any]], None] = lambda detail: None
    # Record what a step started: a process (pid) or a database backend (backend_pid).
    started: Callable[..., None] = lambda **what: None
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise StepStopped(self.stop_message())

    def stop_message(self) -> str:
        reason = self.stop_reason[0] if self.stop_reason else ""
        if reason == "CUTOFF":
            return "Stopped at the window's end (cutoff: cancel)."
        if reason == "WORKER_STOP":
            return "Stopped because the worker is shutting down."
        return "Stopped on request."


class Procedure:
    kind: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str] = ""
    form_class: ClassVar[type[forms.Form]]
    manual: ClassVar[bool] = False
    has_rollback: ClassVar[bool] = False
    # Seed DatabaseMaintenance.impact and requiresDowntime; kinds whose impact depends
    # on their parameters override impact() / requires_downtime().
    default_impact: ClassVar[str] = ""
    default_downtime: ClassVar[bool] = False
    # A template of the kind's own showing its results (a diff, a chart) on run pages
    # and in the execution report, rendered with ``run``; the maintenance templates
    # include it by name, so they never learn what a higher app's kinds record. Plain
    # tables of figures come from ``figures()`` instead.
    result_template: ClassVar[str] = ""

    def build_form(self, data=None, *, user=None, **kwargs) -> forms.Form:
        if issubclass(self.form_class, ProcedureForm):
            return self.form_class(data=data, user=user, **kwargs)
        return self.form_class(data=data, **kwargs)

    def clean_params(self, data: Any, *, user=None) -> dict[str, Any]:
        """Validate raw parameters (a QueryDict keeps multi-valued fields) with the
        kind's form; raise ParamsRefused or ValidationError."""
        form = self.build_form(data, user=user)
        valid = form.is_valid()
        refusal = getattr(form, "refusal", None)
        if refusal is not None:
            raise refusal
        if not valid:
            raise ValidationError(
                [
                    f"{form.fields[name].label or name}: {' '.join(errs)}"
                    if name != "__all__" and name in form.fields
                    else " ".join(errs)
                    for name, errs in form.errors.items()
                ]
            )
        return self.params_from(form)

    def params_from(self, form: forms.Form) -> dict[str, Any]:
        """The stored parameters of a valid form (JSON-serialisable)."""
        return self.to_json(form.cleaned_data)

    def to_json(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        return dict(cleaned)

    def summary(self, params: dict[str, Any]) -> str:
        return self.label

    def details(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        """Labelled parameters, for the approval page ("what will run")."""
        return []

    def precheck_names(self, params: dict[str, Any]) -> list[str]:
        """The pre-checks a run will make, named, for approvers."""
        return []

    def impact(self, params: dict[str, Any]) -> str:
        return self.default_impact

    def requires_downtime(self, params: dict[str, Any]) -> bool:
        return self.default_downtime

    def max_minutes(self, params: dict[str, Any]) -> int:
        """How long the procedure may take, for the window cutoff."""
        return 1

    def queue_for(self, params: dict[str, Any]) -> str:
        """The Celery queue its runs go to ("" = the default queue)."""
        return ""

    def figures(self, result: dict[str, Any]) -> list[Figure]:
        """The run's results as labelled tables (verification figures)."""
        return []

    def prechecks(self, ctx: RunContext) -> list[StepSpec]:
        return []

    def steps(self, ctx: RunContext) -> list[StepSpec]:
        return []

    def verify(self, ctx: RunContext) -> list[StepSpec]:
        return []

    def rollback(self, ctx: RunContext) -> list[StepSpec]:
        return []

    def cleanup(self, ctx: RunContext) -> None:
        """Release what the run held (connections, locks), whatever its outcome."""

    def checklist(self, params: dict[str, Any]) -> list[str]:
        """Manual procedures: the steps an operator ticks."""
        return []
