"""How run results read on pages and reports: labelled values, never raw dicts, ISO
stamps or server paths."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from maintenance.procedures import UnknownProcedure, registry
from maintenance.procedures.base import Figure

# Keys of step results that are shown elsewhere (checks) or are internal.
HIDDEN_KEYS = {"check", "passed", "value", "threshold", "message", "comparison", "exception"}


def label(key: str) -> str:
    return key.replace("_", " ").strip().capitalize()


def display(value: Any) -> str:
    """One value as a person reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        moment = parse_datetime(value) if "T" in value and len(value) >= 19 else None
        if moment is not None:
            value = moment
        elif value.startswith("/"):
            return value.rsplit("/", 1)[-1]  # a server path: its file name is enough
        else:
            return value
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value, UTC)
        local = timezone.localtime(value)
        return local.strftime("%Y-%m-%d %H:%M:%S %Z")
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ", ".join(display(v) for v in value) if value else "—"
    if isinstance(value, dict):
        return "; ".join(f"{label(str(k))}: {display(v)}" for k, v in value.items())
    return str(value)


def labelled(result: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not isinstance(result, dict):
        return []
    return [(label(str(k)), display(v)) for k, v in result.items() if k not in HIDDEN_KEYS]


def figures(kind: str, result: dict[str, Any] | None) -> list[Figure]:
    """The kind's verification figures, with every cell made readable."""
    try:
        procedure = registry.get(kind)
    except UnknownProcedure:
        return []
    out = []
    for figure in procedure.figures(result or {}):
        out.append(
            Figure(
                title=figure.title,
                headers=figure.headers,
                rows=[[display(cell) for cell in row] for row in figure.rows],
            )
        )
    return out
