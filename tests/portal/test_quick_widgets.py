"""The widgets that write their HTML in Python (``portal.widgets``) write exactly what
Django's own widget templates write, for every field of the change list's and the audit
trail's filter forms, bound and unbound, and for the edge cases of the templates
(escaping, optgroups, boolean and False attributes, no value)."""

from __future__ import annotations

import copy

import pytest
from django import forms

from changes.forms import ChangeFilterForm
from compliance.forms import AuditFilterForm
from portal.widgets import QuickDateInput, QuickSelect, QuickTextInput

HOSTILE = '<b>"it\'s" & more</b>'


def _stock(widget: forms.Widget) -> forms.Widget:
    """The same widget, state and all, rendered by Django's own class (its templates)."""
    stock = copy.deepcopy(widget)
    stock.__class__ = next(
        c for c in type(widget).__mro__ if c.__module__ == forms.widgets.__name__
    )
    return stock


@pytest.mark.parametrize(
    ("widget", "value"),
    [
        (QuickSelect(choices=[("", "Any"), ("a", HOSTILE), (HOSTILE, "b")]), "a"),
        (QuickSelect(choices=[("", "Any"), ("a", HOSTILE), (HOSTILE, "b")]), HOSTILE),
        (QuickSelect(choices=[("Group <1>", [(1, "one"), (2, "two")]), (3, "three")]), 2),
        (QuickSelect(choices=[(1, "one")], attrs={"disabled": True, "hidden": False}), None),
        (QuickTextInput(attrs={"maxlength": 5, "autofocus": True, "off": False}), HOSTILE),
        (QuickTextInput(), None),
        (QuickTextInput(), ""),
        (QuickDateInput(attrs={"type": "date"}), "2027-05-16"),
    ],
)
def test_a_quick_widget_writes_what_djangos_templates_write(widget, value):
    attrs = {"id": "id_field", "data-x": HOSTILE}
    assert widget.render("field", value, attrs) == _stock(widget).render("field", value, attrs)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        None,
        {"q": HOSTILE, "state": "in_review", "type": "SECURITY", "priority": "HIGH"},
        {"category": "URGENT", "requester": "o'brien", "start_from": "2027-05-01"},
        {"tenant": "not a number", "start_to": "not a date", "state": "no such state"},
    ],
)
def test_every_field_of_the_filter_form_renders_as_with_djangos_widgets(requester, tenant, data):
    form = ChangeFilterForm(data, user=requester)
    form.is_valid()
    for field in form:
        assert isinstance(field.field.widget, QuickSelect | QuickTextInput | QuickDateInput)
        assert field.as_widget() == field.as_widget(widget=_stock(field.field.widget))
    assert f'<option value="{tenant.pk}">{tenant.name}</option>' in str(form["tenant"])


@pytest.mark.django_db
def test_the_filter_forms_tenant_choices_are_the_tenants_the_user_may_see(
    requester, tenant, other_tenant
):
    form = ChangeFilterForm({"tenant": str(other_tenant.pk)}, user=requester)
    assert not form.is_valid() and "tenant" in form.errors
    assert other_tenant.name not in str(form["tenant"])
    form = ChangeFilterForm({"tenant": str(tenant.pk)}, user=requester)
    assert form.is_valid() and form.cleaned_data["tenant"] == tenant.pk


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"user": HOSTILE, "role": "SECURITY", "action": "approval.", "outcome": "DENIED"},
        {"from": "2027-05-01", "to": "not a date", "object": "CHG-000123"},
        {"role": "NO_SUCH_ROLE", "outcome": HOSTILE},
    ],
)
def test_every_field_of_the_audit_filter_form_renders_as_with_djangos_widgets(data):
    form = AuditFilterForm(data)
    form.is_valid()
    for field in form:
        assert isinstance(field.field.widget, QuickSelect | QuickTextInput | QuickDateInput)
        assert field.as_widget() == field.as_widget(widget=_stock(field.field.widget))
