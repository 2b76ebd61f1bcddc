from __future__ import annotations

from django import forms

from dbops.advisor.parse import MAX_STATEMENT_CHARS


class ExplainForm(forms.Form):
    statement = forms.CharField(
        label="Statement",
        max_length=MAX_STATEMENT_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 100, "spellcheck": "false"}),
        error_messages={"required": "Enter the statement to explain."},
    )
    queryid = forms.IntegerField(required=False, min_value=-(2**63), max_value=2**63 - 1)
    analyze = forms.BooleanField(required=False)
