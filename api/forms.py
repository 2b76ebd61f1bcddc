from __future__ import annotations

from django import forms
from django.conf import settings

from api.models import Scope


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=100,
        help_text="What will use it, e.g. “deploy pipeline”.",
        error_messages={"required": "Name the token after what will use it."},
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=Scope.choices,
        initial=[Scope.READ],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )
    days = forms.IntegerField(
        label="Expires after (days)",
        min_value=1,
        initial=90,
        error_messages={"invalid": "Enter a whole number of days."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        longest = settings.API_TOKEN_MAX_DAYS
        days = self.fields["days"]
        days.max_value = longest
        days.widget.attrs.update({"min": 1, "max": longest})
        days.help_text = f"1 to {longest} days."

    def clean_days(self) -> int:
        value = self.cleaned_data["days"]
        if value > settings.API_TOKEN_MAX_DAYS:
            raise forms.ValidationError(
                f"A token expires after 1 to {settings.API_TOKEN_MAX_DAYS} days."
            )
        return value
