from __future__ import annotations

from datetime import timedelta

from django import forms
from django.core.validators import MaxLengthValidator
from django.utils import timezone

from changes.models import (
    Approval,
    ChangeRequest,
    ChangeType,
    PostImplementationReview,
    Priority,
    State,
)
from portal.models import Component, Service
from portal.widgets import QuickDateInput, QuickSelect, QuickTextInput

MAX_TEXT = 20_000
# How far ahead a change may be planned; also keeps start + window inside datetime's range.
MAX_LEAD = timedelta(days=730)
WINDOW_ERROR = "The window must be between 1 and 1440 minutes."
STALE_FORM = "This form is out of date or damaged. Reload the page and try again."


class ChangeRequestForm(forms.ModelForm):
    """The change form. Proposed start is entered in the user's zone and stored in UTC."""

    version = forms.IntegerField(
        widget=forms.HiddenInput, required=False, error_messages={"invalid": STALE_FORM}
    )
    proposed_start = forms.DateTimeField(
        label="Proposed start",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        help_text="In your time zone.",
    )
    window_minutes = forms.IntegerField(
        label="Window (minutes)",
        min_value=1,
        max_value=1440,
        help_text="1 to 1440. Routine windows allow at most 240 minutes.",
        error_messages={
            "required": WINDOW_ERROR,
            "invalid": "Enter the window as a whole number of minutes, 1 to 1440.",
            "min_value": WINDOW_ERROR,
            "max_value": WINDOW_ERROR,
        },
    )

    class Meta:
        model = ChangeRequest
        fields = [
            "title",
            "description",
            "type",
            "priority",
            "components",
            "services",
            "tenants",
            "proposed_start",
            "window_minutes",
            "blackout_exception",
            "implementation_plan",
            "backout_plan",
            "verification_plan",
        ]
        labels = {
            "title": "Title",
            "description": "Description",
            "type": "Type",
            "priority": "Priority",
            "components": "Components",
            "services": "Services",
            "tenants": "Tenants",
            "blackout_exception": "Blackout exception",
            "implementation_plan": "Implementation plan",
            "backout_plan": "Backout plan",
            "verification_plan": "Verification plan",
        }
        error_messages = {
            "title": {"required": "Give the change a title."},
            "components": {"required": "Name at least one component."},
            "tenants": {"required": "Name at least one tenant."},
        }
        widgets = {
            "components": forms.SelectMultiple(attrs={"size": 6}),
            "services": forms.SelectMultiple(attrs={"size": 4}),
            "tenants": forms.SelectMultiple(attrs={"size": 4}),
            "description": forms.Textarea(attrs={"rows": 4}),
            "implementation_plan": forms.Textarea(attrs={"rows": 4}),
            "backout_plan": forms.Textarea(attrs={"rows": 3}),
            "verification_plan": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        from portal.permissions import visible_tenants

        self.fields["tenants"].queryset = visible_tenants(user)
        self.fields["components"].queryset = Component.objects.all()
        self.fields["services"].queryset = Service.objects.all()
        self.fields["services"].required = False
        self.fields["type"].choices = ChangeType.choices
        self.fields["priority"].choices = Priority.choices
        if not self.instance.pk and not self.is_bound:
            # A careless requester must not page the CTO: new changes start at MEDIUM.
            self.fields["priority"].initial = Priority.MEDIUM
        for name in ("description", "implementation_plan", "backout_plan", "verification_plan"):
            self.fields[name].validators.append(MaxLengthValidator(MAX_TEXT))
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version
        # Name the zone the start is read in (the viewer's, active for this request).
        zone = timezone.get_current_timezone_name()
        abbreviation = f"{timezone.localtime():%Z}"
        start = self.fields["proposed_start"]
        start.help_text = (
            f"In your time zone, {zone} ({abbreviation}). Change it under Preferences."
        )

    def clean_proposed_start(self):
        start = self.cleaned_data["proposed_start"]
        now = timezone.now()
        if start <= now:
            raise forms.ValidationError("The proposed start must be in the future.")
        if start > now + MAX_LEAD:
            raise forms.ValidationError("The proposed start must be within two years from now.")
        return start

    def clean_components(self):
        components = self.cleaned_data.get("components")
        if not components:
            raise forms.ValidationError("Name at least one component.")
        return components

    def clean_tenants(self):
        tenants = self.cleaned_data.get("tenants")
        if not tenants:
            raise forms.ValidationError("Name at least one tenant.")
        return tenants

    def clean_title(self):
        title = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError("Give the change a title.")
        return title

    def service_data(self) -> dict:
        data = {
            k: self.cleaned_data[k]
            for k in self.Meta.fields
            if k not in ("components", "services", "tenants")
        }
        return data


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[(Approval.Status.APPROVED, "Approve"), (Approval.Status.REJECTED, "Reject")],
        error_messages={
            "required": "Choose Approve or Reject.",
            "invalid_choice": "Choose Approve or Reject.",
        },
    )
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    version = forms.IntegerField(
        widget=forms.HiddenInput, required=False, error_messages={"invalid": STALE_FORM}
    )

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("decision") == Approval.Status.REJECTED
            and not (cleaned.get("comment") or "").strip()
        ):
            self.add_error("comment", "A rejection needs a comment explaining why.")
        return cleaned


class DelegateForm(forms.Form):
    username = forms.CharField(label="Delegate to (username)", max_length=150)
    days = forms.IntegerField(
        label="For (days)",
        required=False,
        min_value=1,
        max_value=30,
        initial=7,
        error_messages={
            "min_value": "A delegation lasts 1 to 30 days.",
            "max_value": "A delegation lasts 1 to 30 days.",
            "invalid": "Enter the number of days, 1 to 30.",
        },
    )

    def clean_days(self) -> int:
        return self.cleaned_data.get("days") or 7


class NotesForm(forms.Form):
    notes = forms.CharField(
        label="Notes", max_length=10_000, widget=forms.Textarea(attrs={"rows": 3})
    )


class ReviewForm(forms.Form):
    outcome = forms.ChoiceField(label="Outcome", choices=PostImplementationReview.Outcome.choices)
    notes = forms.CharField(
        label="What happened", max_length=20_000, widget=forms.Textarea(attrs={"rows": 4})
    )
    follow_ups = forms.CharField(
        label="Follow-ups",
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class CorrectiveActionForm(forms.Form):
    note = forms.CharField(
        label="Corrective action",
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Describe the corrective action."},
    )
    linked_change = forms.CharField(
        label="Corrective change (e.g. CHG-000123), if there is one",
        required=False,
        max_length=20,
    )

    def clean_linked_change(self) -> int | None:
        raw = (self.cleaned_data.get("linked_change") or "").strip()
        if not raw:
            return None
        pk = ChangeRequest.pk_of(raw)
        if pk is None:
            raise forms.ValidationError("Name the change by its id, e.g. CHG-000123.")
        return pk


class ChangeFilterForm(forms.Form):
    """The change list's filters (also the register export's and the API's). Its widgets
    write their HTML in Python (``portal.widgets``): it renders on every list page."""

    q = forms.CharField(label="Search", required=False, max_length=200, widget=QuickTextInput)
    state = forms.ChoiceField(
        label="State",
        required=False,
        choices=[("", "Any state"), *State.choices],
        widget=QuickSelect,
    )
    type = forms.ChoiceField(
        label="Type",
        required=False,
        choices=[("", "Any type"), *ChangeType.choices],
        widget=QuickSelect,
    )
    priority = forms.ChoiceField(
        label="Priority",
        required=False,
        choices=[("", "Any priority"), *Priority.choices],
        widget=QuickSelect,
    )
    category = forms.ChoiceField(
        label="Category",
        required=False,
        choices=[
            ("", "Any category"),
            ("STANDARD", "Standard"),
            ("EMERGENCY", "Emergency"),
            ("URGENT", "Urgent"),
        ],
        widget=QuickSelect,
    )
    # The tenant's id, one of the user's visible tenants (the choices): the same list the
    # visibility rule of the rows reads, so the page asks for it once.
    tenant = forms.TypedChoiceField(label="Tenant", required=False, coerce=int, widget=QuickSelect)
    requester = forms.CharField(
        label="Requester", required=False, max_length=150, widget=QuickTextInput
    )
    start_from = forms.DateField(
        label="Start from", required=False, widget=QuickDateInput(attrs={"type": "date"})
    )
    start_to = forms.DateField(
        label="Start to", required=False, widget=QuickDateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        from portal.permissions import visible_tenant_list

        self.fields["tenant"].choices = [
            ("", "Any tenant"),
            *((tenant.pk, tenant.name) for tenant in visible_tenant_list(user)),
        ]
