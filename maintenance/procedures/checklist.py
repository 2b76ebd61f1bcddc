"""'Manual checklist': an operator ticks each step and enters an evidence note."""

from __future__ import annotations

from typing import Any

from django import forms

from maintenance.procedures import register
from maintenance.procedures.base import Procedure


class ChecklistForm(forms.Form):
    steps = forms.CharField(
        label="Checklist steps (one per line)",
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=10_000,
    )
    estimated_minutes = forms.IntegerField(
        label="Estimated minutes", min_value=1, max_value=1440, initial=15
    )

    def clean_steps(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["steps"].splitlines()]
        lines = [line[:200] for line in lines if line]
        if not lines:
            raise forms.ValidationError("List at least one step.")
        if len(lines) > 50:
            raise forms.ValidationError("At most 50 steps.")
        return lines


@register
class ManualChecklist(Procedure):
    kind = "manual_checklist"
    label = "Manual checklist"
    description = "An operator performs each step by hand and records evidence."
    form_class = ChecklistForm
    manual = True
    default_impact = "LOW"

    def to_json(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        return {"steps": cleaned["steps"], "estimated_minutes": cleaned["estimated_minutes"]}

    def summary(self, params: dict[str, Any]) -> str:
        return f"Manual checklist ({len(params.get('steps', []))} steps)"

    def details(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        steps = params.get("steps", [])
        return [(f"Step {n}", step) for n, step in enumerate(steps, start=1)]

    def max_minutes(self, params: dict[str, Any]) -> int:
        return int(params.get("estimated_minutes", 15))

    def checklist(self, params: dict[str, Any]) -> list[str]:
        return list(params.get("steps", []))
