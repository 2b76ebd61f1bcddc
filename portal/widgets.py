"""Form widgets that write their HTML in Python, for the forms on the busiest pages.

Django renders a widget through the form renderer's templates: a ``<select>`` is one
template for itself, one per option and one for each of their attribute lists, about
forty template renders for the change list's filter form, a quarter of that page's time.
These write exactly what Django's own templates write (``django/forms/widgets/``:
``input.html``, ``select.html``, ``select_option.html``, ``attrs.html``; a test holds
them to it), as Django's admin writes its change list's cells with ``format_html``.
"""

from __future__ import annotations

from collections.abc import Iterable

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def _attrs(attrs: dict) -> SafeString:
    """``attrs.html``: `` name="value"`` each, a bare name for True, nothing for False."""
    return _joined(
        format_html(" {}", name) if value is True else format_html(' {}="{}"', name, str(value))
        for name, value in attrs.items()
        if value is not False
    )


def _joined(pieces: Iterable[SafeString]) -> SafeString:
    return format_html_join("", "{}", ((piece,) for piece in pieces))


class QuickInputMixin:
    """``input.html``, for TextInput, DateInput and the like."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        shown = widget["value"]
        value_attr = format_html(' value="{}"', str(shown)) if shown is not None else ""
        return format_html(
            '<input type="{}" name="{}"{}{}>',
            widget["type"],
            widget["name"],
            value_attr,
            _attrs(widget["attrs"]),
        )


class QuickTextInput(QuickInputMixin, forms.TextInput):
    pass


class QuickDateInput(QuickInputMixin, forms.DateInput):
    pass


class QuickSelect(forms.Select):
    """``select.html`` with ``select_option.html`` per option (optgroups included)."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        parts = []
        for group_name, options, _index in widget["optgroups"]:
            body = format_html_join(
                "",
                '\n  <option value="{}"{}>{}</option>\n',
                ((str(o["value"]), _attrs(o["attrs"]), o["label"]) for o in options),
            )
            if group_name:
                body = format_html('\n  <optgroup label="{}">{}\n  </optgroup>', group_name, body)
            parts.append(body)
        return format_html(
            '<select name="{}"{}>{}\n</select>',
            widget["name"],
            _attrs(widget["attrs"]),
            _joined(parts),
        )
