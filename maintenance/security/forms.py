"""Forms of the security pages: the compliance filters and the advisory upload."""

from __future__ import annotations

from django import forms

from maintenance.security import osv, versions
from maintenance.security.selectors import Filters


class ComplianceFilterForm(forms.Form):
    severity = forms.ChoiceField(
        required=False, choices=[("", "Any severity")] + [(s, s.title()) for s in osv.SEVERITY_RANK]
    )
    component = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, choices=())
    ecosystem = forms.ChoiceField(
        required=False, choices=[("", "Any ecosystem")] + [(e, e) for e in versions.ECOSYSTEMS]
    )
    q = forms.CharField(label="Package or advisory", required=False, max_length=100)
    min_days = forms.IntegerField(
        label="Exposed at least (days)", required=False, min_value=0, max_value=36500
    )

    def __init__(self, *args, components=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["component"].choices = [("", "Any component")] + [
            (c.pk, c.name) for c in components
        ]

    def filters(self) -> Filters:
        data = self.cleaned_data
        return Filters(
            severity=data.get("severity") or "",
            component=data.get("component"),
            ecosystem=data.get("ecosystem") or "",
            q=(data.get("q") or "").strip(),
            min_days=data.get("min_days"),
        )


class AdvisoryUploadForm(forms.Form):
    file = forms.FileField(label="OSV JSON file", help_text="One OSV record or a list of them.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > osv.MAX_FILE_BYTES:
            raise forms.ValidationError("The file is larger than 5 MB.")
        return upload
