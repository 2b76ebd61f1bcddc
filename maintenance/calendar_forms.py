"""Forms of the calendar pages: an emergency window request and a window decision."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from maintenance.models import MaintenancePolicy, WindowApproval

MAX_TEXT = 5_000
# Far enough ahead for any real emergency; also keeps start + duration in range.
MAX_LEAD = timedelta(days=90)


class EmergencyWindowForm(forms.Form):
    """Start is entered in the viewer's zone (the active one) and becomes UTC."""

    start = forms.DateTimeField(
        label="Start",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        error_messages={
            "required": "Enter when the window starts.",
            "invalid": "Enter the start as a date and time, e.g. 2026-03-01 14:30.",
        },
    )
    duration_minutes = forms.IntegerField(
        label="Duration (minutes)",
        min_value=1,
        error_messages={
            "required": "Enter how long the window lasts, in minutes.",
            "invalid": "Enter the duration as a whole number of minutes.",
        },
    )
    reason = forms.CharField(
        label="Why is an emergency window needed?",
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Say why the emergency window is needed."},
    )

    def __init__(self, *args, policy: MaintenancePolicy, now=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.now = now or timezone.now()
        limit = policy.max_duration_minutes
        field = self.fields["duration_minutes"]
        field.widget.attrs.update(min=1, max=limit)
        field.help_text = f"At most {limit} minutes."
        self.fields["start"].help_text = (
            f"In your time zone ({timezone.get_current_timezone_name()}), at least "
            f"{policy.min_notice_minutes} minutes from now so stakeholders can be notified."
        )
        if not self.is_bound:
            self.initial.setdefault("duration_minutes", policy.default_duration_minutes)

    def clean_start(self):
        start = self.cleaned_data["start"]
        earliest = self.now + timedelta(minutes=self.policy.min_notice_minutes)
        if start < earliest:
            local = timezone.localtime(earliest)
            raise forms.ValidationError(
                f"An emergency window starts at least {self.policy.min_notice_minutes} "
                f"minutes ahead: {local:%Y-%m-%d %H:%M} ({local.tzname()}) at the earliest."
            )
        if start > self.now + MAX_LEAD:
            raise forms.ValidationError(
                "An emergency window starts within 90 days; plan anything later as "
                "a routine change."
            )
        return start

    def clean_duration_minutes(self):
        minutes = self.cleaned_data["duration_minutes"]
        if minutes > self.policy.max_duration_minutes:
            raise forms.ValidationError(
                f"An emergency window lasts at most {self.policy.max_duration_minutes} minutes."
            )
        return minutes

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the emergency window is needed.")
        return reason


class WindowDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            (WindowApproval.Status.APPROVED, "Approve"),
            (WindowApproval.Status.REJECTED, "Reject"),
        ],
        error_messages={"required": "Choose Approve or Reject."},
    )
    comment = forms.CharField(
        label="Comment", required=False, max_length=MAX_TEXT, widget=forms.Textarea
    )
    version = forms.IntegerField(
        widget=forms.HiddenInput,
        required=False,
        error_messages={"invalid": "This form is out of date or damaged. Reload the page."},
    )

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("decision") == WindowApproval.Status.REJECTED
            and not (cleaned.get("comment") or "").strip()
        ):
            self.add_error("comment", "A rejection needs a comment explaining why.")
        return cleaned
