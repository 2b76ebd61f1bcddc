"""The System tuning procedure's parameters. Adjustments are configuration changes:
each line is validated against the target like a change set is."""

from __future__ import annotations

from typing import Any

from django import forms

from dbops.configuration import rules
from dbops.configuration.validation import clean_entries, validate
from dbops.models import DatabaseTarget
from dbops.tuning.metrics import METRICS
from dbops.tuning.models import TuningSession
from dbops.tuning.workload import BUILTINS, KINDS
from portal.errors import Invalid

MAX_ADJUSTMENTS = 10


def parse_adjustments(text: str) -> list[list[tuple[str, str]]]:
    """One adjustment per line: ``work_mem = 16MB`` or ``a = 1, b = 2`` (several
    parameters applied and judged together)."""
    adjustments = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pairs = []
        for part in line.split(","):
            name, sep, value = part.partition("=")
            if not sep:
                raise forms.ValidationError(
                    f"Line {number}: write parameter = value (“{part.strip()}” has no “=”)."
                )
            pairs.append((name.strip(), value.strip().strip("'")))
        try:
            adjustments.append(clean_entries(pairs))
        except Invalid as exc:
            raise forms.ValidationError(f"Line {number}: {exc.message}") from None
    if not adjustments:
        raise forms.ValidationError("Give at least one adjustment.")
    if len(adjustments) > MAX_ADJUSTMENTS:
        raise forms.ValidationError(f"At most {MAX_ADJUSTMENTS} adjustments in one run.")
    return adjustments


def adjustment_refusals(
    target: DatabaseTarget, adjustment: list[tuple[str, str]]
) -> tuple[rules.Validation, list[str]]:
    validation = validate(target, adjustment)
    problems = [
        f"{v.rule}{f' [{v.parameter}]' if v.parameter else ''}: {v.message}"
        for v in validation.failures
    ]
    problems += [
        f"{name} needs a restart; tuning adjusts only settings a reload applies."
        for name in validation.restart_required
    ]
    return validation, problems


class SystemTuningForm(forms.Form):
    target = forms.ModelChoiceField(
        label="Database target", queryset=DatabaseTarget.objects.filter(is_active=True)
    )
    resource = forms.ChoiceField(label="Resource", choices=TuningSession.Resource.choices)
    metric = forms.ChoiceField(
        label="Judge by", choices=[(k, v[0]) for k, v in METRICS.items()], initial="tps"
    )
    workload = forms.ChoiceField(label="Workload", choices=list(KINDS.items()), initial="sort")
    builtin = forms.ChoiceField(
        label="pgbench built-in", choices=[(b, b) for b in BUILTINS], required=False
    )
    scale = forms.IntegerField(label="pgbench scale", min_value=1, max_value=1000, required=False)
    rows = forms.IntegerField(
        label="Sort-heavy rows", min_value=1000, max_value=10_000_000, required=False
    )
    script = forms.CharField(
        label="Custom pgbench script",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=10_000,
    )
    setup_sql = forms.CharField(
        label="Custom setup SQL (runs in the scratch schema)",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=20_000,
    )
    clients = forms.IntegerField(
        label="Clients", min_value=1, max_value=64, initial=2, required=False
    )
    samples = forms.IntegerField(
        label="Samples (N)", min_value=3, max_value=50, initial=5, required=False
    )
    sample_seconds = forms.IntegerField(
        label="Seconds per sample", min_value=1, max_value=60, initial=2, required=False
    )
    min_stabilise_seconds = forms.FloatField(
        label="Minimum stabilisation (s)", min_value=0, max_value=600, initial=2, required=False
    )
    max_stabilise_seconds = forms.FloatField(
        label="Maximum stabilisation (s)", min_value=1, max_value=3600, initial=30, required=False
    )
    spread_percent = forms.FloatField(
        label="Stable when the spread is under (%)",
        min_value=1,
        max_value=100,
        initial=20,
        required=False,
    )
    noise_percent = forms.FloatField(
        label="Keep only beyond a noise threshold of (%)",
        min_value=0,
        max_value=100,
        initial=5,
        required=False,
    )
    adjustments = forms.CharField(
        label="Adjustments (one per line: parameter = value)",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
    )

    def clean_adjustments(self) -> list[list[tuple[str, str]]]:
        return parse_adjustments(self.cleaned_data["adjustments"])

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("workload")
        if kind == "custom" and not (cleaned.get("script") or "").strip():
            self.add_error("script", "A custom workload needs its pgbench script.")
        if kind == "builtin" and not cleaned.get("builtin"):
            self.add_error("builtin", "Choose the built-in script.")
        low, high = cleaned.get("min_stabilise_seconds"), cleaned.get("max_stabilise_seconds")
        if low is not None and high is not None and high < low:
            self.add_error("max_stabilise_seconds", "The maximum is below the minimum.")
        target, adjustments = cleaned.get("target"), cleaned.get("adjustments")
        if target is not None and adjustments:
            for number, adjustment in enumerate(adjustments, start=1):
                try:
                    _validation, problems = adjustment_refusals(target, adjustment)
                except Invalid as exc:
                    raise forms.ValidationError(exc.message) from None
                if problems:
                    self.add_error(
                        "adjustments", f"Adjustment {number} refused: " + "; ".join(problems)
                    )
        return cleaned

    def params(self) -> dict[str, Any]:
        c = self.cleaned_data
        return {
            "target": c["target"].pk,
            "resource": c["resource"],
            "metric": c["metric"],
            "workload": c["workload"],
            "builtin": c.get("builtin") or "select-only",
            "scale": c.get("scale") or 1,
            "rows": c.get("rows") or 50_000,
            "script": c.get("script") or "",
            "setup_sql": c.get("setup_sql") or "",
            "clients": c.get("clients") or 2,
            "samples": c.get("samples") or 5,
            "sample_seconds": c.get("sample_seconds") or 2,
            "min_stabilise_seconds": c["min_stabilise_seconds"]
            if c.get("min_stabilise_seconds") is not None
            else 2,
            "max_stabilise_seconds": c.get("max_stabilise_seconds") or 30,
            "spread_percent": c.get("spread_percent") or 20,
            "noise_percent": c["noise_percent"] if c.get("noise_percent") is not None else 5,
            "adjustments": [[list(pair) for pair in adj] for adj in c["adjustments"]],
        }
