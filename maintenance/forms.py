from __future__ import annotations

from django import forms

from maintenance.procedures import registry


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
