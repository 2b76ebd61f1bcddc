"""Forms of the configuration pages. The rows of a set arrive as repeated ``parameter``
and ``value`` fields, read with getlist (a dict of the QueryDict would keep one)."""

from __future__ import annotations

from django import forms
from django.http import QueryDict

from dbops.configuration import pgtune, rules, units
from dbops.configuration.models import ConfigurationChangeSet

EMPTY_ROWS = 5
MAX_ROWS = rules.MAX_ENTRIES


def rows_from(data: QueryDict) -> list[tuple[str, str]]:
    names, values = data.getlist("parameter"), data.getlist("value")
    if len(names) != len(values):
        raise forms.ValidationError("Each row needs a parameter and a value field.")
    if len(names) > MAX_ROWS:
        raise forms.ValidationError(f"At most {MAX_ROWS} rows.")
    return [(n[:100], v[:1024]) for n, v in zip(names, values, strict=True)]


def source_from(data: QueryDict) -> str:
    source = data.get("source") or ConfigurationChangeSet.Source.MANUAL
    allowed = (ConfigurationChangeSet.Source.MANUAL, ConfigurationChangeSet.Source.SUGGESTION)
    return source if source in allowed else ConfigurationChangeSet.Source.MANUAL


class SuggestForm(forms.Form):
    ram = forms.CharField(
        label="RAM",
        max_length=32,
        help_text="With a unit: 16GB, 512MB.",
    )
    cpus = forms.IntegerField(label="CPUs", min_value=1, max_value=1024, required=False)
    storage = forms.ChoiceField(label="Storage", choices=list(pgtune.STORAGE.items()))
    workload = forms.ChoiceField(label="Workload", choices=list(pgtune.WORKLOADS.items()))
    connections = forms.IntegerField(
        label="Connections (empty: the workload's default)",
        min_value=1,
        max_value=10_000,
        required=False,
    )

    def clean_ram(self) -> int:
        text = self.cleaned_data["ram"]
        try:
            value = units.to_bytes(text, "B")
        except units.UnitError as exc:
            raise forms.ValidationError(exc.message) from None
        if value < 256 * 1024**2:
            raise forms.ValidationError("At least 256MB.")
        if value > 64 * 1024**4:
            raise forms.ValidationError("At most 64TB.")
        return value
