"""Filters of the audit trail (page and exports), the KPI range and background exports."""

from __future__ import annotations

from django import forms

from portal.models import AuditEvent
from portal.roles import Role
from portal.widgets import QuickDateInput, QuickSelect, QuickTextInput

MAX_RANGE_DAYS = 3660


class AuditFilterForm(forms.Form):
    """``from``/``to`` are dates in the viewer's zone, both included. Its widgets write
    their HTML in Python (``portal.widgets``): the audit trail shows it on every page."""

    user = forms.CharField(label="User", required=False, max_length=150, widget=QuickTextInput)
    role = forms.ChoiceField(
        label="Role",
        required=False,
        choices=[("", "Any role"), *Role.choices],
        widget=QuickSelect,
    )
    action = forms.CharField(
        label="Action starts with",
        required=False,
        max_length=64,
        widget=QuickTextInput(attrs={"placeholder": "approval."}),
    )
    object = forms.CharField(
        label="Object",
        required=False,
        max_length=130,
        help_text="An id (CHG-000123), or type:id (changes.changerequest:CHG-000123).",
        widget=QuickTextInput,
    )
    outcome = forms.ChoiceField(
        label="Outcome",
        required=False,
        choices=[("", "Any outcome"), *AuditEvent.Outcome.choices],
        widget=QuickSelect,
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" and "to" are Python keywords: declared here, shown first.
        dates = {
            "from": forms.DateField(
                label="From", required=False, widget=QuickDateInput(attrs={"type": "date"})
            ),
            "to": forms.DateField(
                label="To", required=False, widget=QuickDateInput(attrs={"type": "date"})
            ),
        }
        self.fields = {**dates, **self.fields}

    def clean_object(self) -> tuple[str, str] | None:
        raw = (self.cleaned_data.get("object") or "").strip()
        if not raw:
            return None
        object_type, _, object_id = raw.rpartition(":")
        if len(object_type) > 64 or len(object_id) > 64 or not object_id:
            raise forms.ValidationError("Name the object as an id or as type:id.")
        return object_type.lower(), object_id

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("from"), cleaned.get("to")
        if start and end:
            if start > end:
                raise forms.ValidationError("“From” must not be after “To”.")
            if (end - start).days > MAX_RANGE_DAYS:
                raise forms.ValidationError("Choose a range of at most ten years.")
        return cleaned


class KpiRangeForm(forms.Form):
    """Months, as YYYY-MM, both included; the last twelve by default."""

    start = forms.DateField(
        label="From month",
        required=False,
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )
    end = forms.DateField(
        label="To month",
        required=False,
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The first month must not be after the last.")
            if (end.year - start.year) * 12 + end.month - start.month >= 60:
                raise forms.ValidationError("Choose at most five years of months.")
        return cleaned


class ExportRequestForm(forms.Form):
    exporter = forms.ChoiceField(
        choices=[("changes", "Change register"), ("audit", "Audit trail")],
        error_messages={"invalid_choice": "Choose the change register or the audit trail."},
    )
    format = forms.ChoiceField(
        choices=[("csv", "CSV"), ("xlsx", "XLSX")],
        error_messages={"invalid_choice": "Choose CSV or XLSX."},
    )
