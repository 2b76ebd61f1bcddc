"""Number formats for the database pages."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def percent(ratio, digits: int = 1) -> str:
    """0.1234 -> "12.3 %"; empty for no value."""
    if ratio is None or ratio == "":
        return "—"
    return f"{float(ratio) * 100:.{int(digits)}f} %"


@register.filter
def ms(value) -> str:
    if value is None:
        return "—"
    value = float(value)
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    return f"{value:,.1f} ms"


@register.filter
def duration(value) -> str:
    """A timedelta as "2 h 03 min", "4 min 05 s" or "12 s"."""
    if not isinstance(value, timedelta):
        return "—"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@register.filter
def count(value) -> str:
    return "—" if value is None else f"{int(value):,}"
