from __future__ import annotations

from django import forms
from django.core.validators import validate_email

from maintenance.procedures import registry
from portal.roles import Role


class ScheduleForm(forms.Form):
    window = forms.TypedChoiceField(label="Maintenance window", coerce=int)

    def __init__(self, *args, windows, suggested=None, **kwargs):
        super().__init__(*args, **kwargs)
        from django.utils import timezone

        def label(window, reasons):
            start = timezone.localtime(window.start)
            text = f"{window.get_type_display()} · {start:%a %d %b %Y %H:%M %Z}"
            if suggested is not None and window.pk == suggested.pk:
                text += " (suggested: next valid slot)"
            if reasons:
                text += " — not available: " + " ".join(reasons)
            return text

        self.fields["window"].choices = [(w.pk, label(w, r)) for w, r in windows]
        if suggested is not None:
            self.fields["window"].initial = suggested.pk


class ProcedureKindForm(forms.Form):
    kind = forms.ChoiceField(label="Procedure")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = registry.choices()


class EvidenceForm(forms.Form):
    evidence = forms.CharField(
        label="Evidence", max_length=10_000, widget=forms.Textarea(attrs={"rows": 2})
    )


class StakeholdersForm(forms.Form):
    """A window's named stakeholders: one username or address per line, role groups."""

    usernames = forms.CharField(
        label="People (usernames, one per line)",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    roles = forms.MultipleChoiceField(
        label="Role groups", required=False, choices=Role.choices, widget=forms.SelectMultiple
    )
    emails = forms.CharField(
        label="E-mail addresses (one per line)",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    timezone = forms.CharField(label="Time zone of the window's notices", max_length=64)

    def clean_usernames(self) -> list[str]:
        return _lines(self.cleaned_data.get("usernames", ""))

    def clean_emails(self) -> list[str]:
        addresses = _lines(self.cleaned_data.get("emails", ""))
        for address in addresses:
            validate_email(address)
        return addresses


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]
