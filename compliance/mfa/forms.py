from __future__ import annotations

from django import forms


class CodeForm(forms.Form):
    otp_token = forms.CharField(
        label="Code",
        max_length=40,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        error_messages={"required": "Enter the code."},
    )
