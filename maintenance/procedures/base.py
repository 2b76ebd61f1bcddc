"""What a procedure kind declares, and the context its steps run with."""

from __future__ import annotations

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


@dataclass
class StepSpec:
    name: str
    run: Callable[[RunContext], dict[str, Any] | None]
    # The phase goes on to the next step after this one fails, and fails at its end:
    # independent units (one component's security update) must not stop the others.
    continue_on_failure: bool = False


@dataclass
class RunContext:
    """Handed to every step: parameters, shared state, output and heartbeat hooks."""

    run_id: int
    params: dict[str, Any]
    change_id: int
    window_end: Any
    log: Callable[[str], None]
    heartbeat: Callable[[], None]
    set_progress: Callable[[int], None]
    state: dict[str, Any] = field(default_factory=dict)


class Procedure:
    kind: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str] = ""
    form_class: ClassVar[type[forms.Form]]
    manual: ClassVar[bool] = False
    has_rollback: ClassVar[bool] = False
    # A template of the kind's own showing its results (a diff, a chart) on run pages
    # and in the execution report, rendered with ``run``; the maintenance templates
    # include it by name, so they never learn what a higher app's kinds record.
    result_template: ClassVar[str] = ""

    def clean_params(self, data: dict[str, Any]) -> dict[str, Any]:
        """Validate raw parameters with the kind's form; raise ValidationError."""
        form = self.form_class(data=data)
        if not form.is_valid():
            raise ValidationError(
                [
                    f"{name}: {' '.join(errs)}" if name != "__all__" else " ".join(errs)
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

    def max_minutes(self, params: dict[str, Any]) -> int:
        """How long the procedure may take, for the window cutoff."""
        return 1

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
