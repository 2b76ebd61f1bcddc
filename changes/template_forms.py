"""Forms of the standard change catalog: proposing a template (or a new version of it),
deciding and retiring it, and filing a change from it."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.core.validators import MaxValueValidator
from django.utils import timezone

from changes.forms import MAX_LEAD, MAX_TEXT, STALE_FORM
from changes.models import (
    ROUTINE_MAX_WINDOW_MINUTES,
    ChangeRequest,
    ChangeType,
    Priority,
    TemplateVersion,
)
from portal.models import Component, Tenant
from portal.permissions import visible_tenants

PLAN_WIDGET = forms.Textarea(attrs={"rows": 3})


class TemplateForm(forms.Form):
    """A new template (with its name) or a new version of one (without)."""

    name = forms.CharField(label="Name", max_length=120)
    title_pattern = forms.CharField(
        label="Title pattern",
        max_length=200,
        help_text="Changes are titled from it; {component}, {tenant} and {date} are filled in.",
    )
    description = forms.CharField(label="Description", max_length=MAX_TEXT, widget=PLAN_WIDGET)
    type = forms.ChoiceField(label="Type", choices=ChangeType.choices)
    implementation_plan = forms.CharField(
        label="Implementation plan", max_length=MAX_TEXT, widget=PLAN_WIDGET
    )
    backout_plan = forms.CharField(label="Backout plan", max_length=MAX_TEXT, widget=PLAN_WIDGET)
    verification_plan = forms.CharField(
        label="Verification plan", max_length=MAX_TEXT, widget=PLAN_WIDGET
    )
    components = forms.ModelMultipleChoiceField(
        label="Components it covers",
        queryset=Component.objects.none(),
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    tenants = forms.ModelMultipleChoiceField(
        label="Tenants it covers",
        queryset=Tenant.objects.none(),
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )
    max_window_minutes = forms.IntegerField(
        label="Maximum window (minutes)",
        min_value=1,
        max_value=ROUTINE_MAX_WINDOW_MINUTES,
        initial=60,
        help_text=f"At most {ROUTINE_MAX_WINDOW_MINUTES}: a standard change fits a routine window.",
    )
    risk_ceiling = forms.IntegerField(
        label="Risk ceiling (score)",
        min_value=0,
        initial=30,
        help_text="A change assessed above it goes through the normal review.",
    )
    source_change = forms.CharField(
        label="Copy the procedures of change (e.g. CHG-000123)",
        required=False,
        max_length=20,
        help_text="A change that ran them well; its procedures run in every change filed.",
    )
    version = forms.IntegerField(
        widget=forms.HiddenInput, required=False, error_messages={"invalid": STALE_FORM}
    )

    def __init__(self, *args, user, new: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["components"].queryset = Component.objects.order_by("name")
        self.fields["tenants"].queryset = visible_tenants(user).order_by("name")
        if not new:
            del self.fields["name"]

    def clean_source_change(self) -> int | None:
        raw = (self.cleaned_data.get("source_change") or "").strip()
        if not raw:
            return None
        pk = ChangeRequest.pk_of(raw)
        if pk is None:
            raise forms.ValidationError("Name the change by its id, e.g. CHG-000123.")
        return pk

    @classmethod
    def initial_from(cls, version: TemplateVersion) -> dict:
        return {
            "title_pattern": version.title_pattern,
            "description": version.description,
            "type": version.type,
            "implementation_plan": version.implementation_plan,
            "backout_plan": version.backout_plan,
            "verification_plan": version.verification_plan,
            "components": list(version.components.all()),
            "tenants": list(version.tenants.all()),
            "max_window_minutes": version.max_window_minutes,
            "risk_ceiling": version.risk_ceiling,
            "source_change": version.source_change.public_id if version.source_change else "",
            "version": version.template.version,
        }


class TemplateDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("APPROVED", "Approve"), ("REJECTED", "Reject")],
        error_messages={
            "required": "Choose Approve or Reject.",
            "invalid_choice": "Choose Approve or Reject.",
        },
    )
    comment = forms.CharField(label="Comment", required=False, max_length=MAX_TEXT)
    version = forms.IntegerField(required=False, error_messages={"invalid": STALE_FORM})


class RetireForm(forms.Form):
    reason = forms.CharField(
        label="Why retire it",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the template is retired."},
    )
    version = forms.IntegerField(required=False, error_messages={"invalid": STALE_FORM})


class FileFromTemplateForm(forms.Form):
    """What the requester picks when filing from a template; the rest is the template's."""

    components = forms.ModelMultipleChoiceField(
        label="Components",
        queryset=Component.objects.none(),
        widget=forms.SelectMultiple(attrs={"size": 4}),
        error_messages={"required": "Name at least one component."},
    )
    tenants = forms.ModelMultipleChoiceField(
        label="Tenants",
        queryset=Tenant.objects.none(),
        widget=forms.SelectMultiple(attrs={"size": 4}),
        error_messages={"required": "Name at least one tenant."},
    )
    proposed_start = forms.DateTimeField(
        label="Proposed start",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        help_text="In your time zone. An operator schedules it into a routine window.",
    )
    window_minutes = forms.IntegerField(label="Window (minutes)", min_value=1)
    priority = forms.ChoiceField(label="Priority", choices=Priority.choices, initial=Priority.LOW)

    def __init__(self, *args, user, version: TemplateVersion, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["components"].queryset = version.components.order_by("name")
        self.fields["tenants"].queryset = version.tenants.filter(
            pk__in=visible_tenants(user).values("pk")
        ).order_by("name")
        window = self.fields["window_minutes"]
        window.max_value = version.max_window_minutes
        window.validators.append(MaxValueValidator(version.max_window_minutes))
        window.widget.attrs.update({"min": 1, "max": version.max_window_minutes})
        window.initial = min(60, version.max_window_minutes)
        window.help_text = f"At most {version.max_window_minutes} (the template's maximum)."
        window.error_messages["max_value"] = (
            f"The window must be 1 to {version.max_window_minutes} minutes (the template's "
            "maximum)."
        )

    def clean_proposed_start(self):
        start = self.cleaned_data["proposed_start"]
        now = timezone.now()
        if start <= now:
            raise forms.ValidationError("The proposed start must be in the future.")
        if start > now + MAX_LEAD:
            raise forms.ValidationError("The proposed start must be within two years from now.")
        return start

    @staticmethod
    def default_start():
        return timezone.localtime(timezone.now() + timedelta(days=7)).replace(
            hour=1, minute=0, second=0, microsecond=0
        )
