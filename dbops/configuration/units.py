"""PostgreSQL's units, parsed the way the server parses them (guc.c parse_int/parse_real).

A memory or time setting is stored in ``pg_settings`` as a number in the setting's own
unit (``shared_buffers`` in 8kB pages, ``work_mem`` in kB, ``checkpoint_timeout`` in s).
A value may name any unit of its kind (case-sensitive, as the server insists: "64mb" is
refused), may be fractional ("1.5GB") and is rounded half-to-even to the setting's unit,
as the server's rint() does. A bare number is in the setting's unit.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

# Bytes per memory unit, milliseconds per time unit.
MEMORY_UNITS: dict[str, int] = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
TIME_UNITS: dict[str, Decimal] = {
    "us": Decimal("0.001"),
    "ms": Decimal(1),
    "s": Decimal(1000),
    "min": Decimal(60_000),
    "h": Decimal(3_600_000),
    "d": Decimal(86_400_000),
}
_NUMBER = re.compile(
    r"^\s*(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>[A-Za-z]*)\s*$"
)


class UnitError(ValueError):
    """A value that is not a number, or names a unit the setting does not take."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def split(text: str) -> tuple[Decimal, str]:
    """The number and the unit (possibly empty) of a value such as ``"1.5 GB"``."""
    match = _NUMBER.match(str(text))
    if not match:
        raise UnitError(f"“{text}” is not a number with an optional unit.")
    try:
        number = Decimal(match["number"])
    except InvalidOperation:
        raise UnitError(f"“{text}” is not a number.") from None
    if not number.is_finite():
        raise UnitError(f"“{text}” is not a finite number.")
    return number, match["unit"]


def unit_kind(setting_unit: str | None) -> tuple[str | None, Decimal]:
    """("memory", bytes per unit) for "8kB", "kB", "MB", "B"; ("time", ms per unit) for
    "ms", "s", "min"; (None, 1) for settings without a unit."""
    if not setting_unit:
        return None, Decimal(1)
    if setting_unit in TIME_UNITS:
        return "time", TIME_UNITS[setting_unit]
    if setting_unit in MEMORY_UNITS:
        return "memory", Decimal(MEMORY_UNITS[setting_unit])
    number, unit = split(setting_unit)  # "8kB" is 8 × kB
    if unit in MEMORY_UNITS:
        return "memory", number * MEMORY_UNITS[unit]
    raise UnitError(f"Unknown setting unit “{setting_unit}”.")


def valid_units(kind: str) -> str:
    names = MEMORY_UNITS if kind == "memory" else TIME_UNITS
    return ", ".join(f"“{u}”" for u in names)


def to_setting_unit(text: str, setting_unit: str | None, *, integer: bool = True) -> Decimal:
    """The value in the setting's own unit, as ``pg_settings.setting`` shows it.

    Integer settings are rounded half to even (the server's rint()); real ones keep
    their fraction."""
    number, unit = split(text)
    kind, per_setting_unit = unit_kind(setting_unit)
    if unit:
        if kind is None:
            raise UnitError(f"“{text}”: this parameter takes no unit.")
        table = MEMORY_UNITS if kind == "memory" else TIME_UNITS
        if unit not in table:
            raise UnitError(
                f"“{text}”: “{unit}” is not a {kind} unit; valid units are {valid_units(kind)} "
                "(case-sensitive)."
            )
        number = number * Decimal(table[unit]) / per_setting_unit
    if integer:
        number = number.to_integral_value(rounding="ROUND_HALF_EVEN")
    return number


def to_bytes(text: str, setting_unit: str | None = "kB") -> int:
    """A memory value in bytes; a bare number is in ``setting_unit``."""
    kind, per_unit = unit_kind(setting_unit)
    if kind != "memory":
        raise UnitError(f"“{setting_unit}” is not a memory unit.")
    return int(to_setting_unit(text, setting_unit) * per_unit)


def parse_memory_mb(text: str, setting_unit: str | None = "8kB") -> Decimal:
    """The seed's parseMemoryValue(): a memory value in MB."""
    return Decimal(to_bytes(text, setting_unit)) / MEMORY_UNITS["MB"]


def format_bytes(value: int | float | Decimal) -> str:
    """The largest unit that divides the value exactly, as the server shows memory:
    134217728 -> "128MB", 1572864 -> "1536kB"."""
    value = int(value)
    if value == 0:
        return "0"
    for unit in ("TB", "GB", "MB", "kB"):
        if value % MEMORY_UNITS[unit] == 0:
            return f"{value // MEMORY_UNITS[unit]}{unit}"
    return f"{value}B"


def format_ms(value: int | float | Decimal) -> str:
    value = Decimal(value)
    if value == 0:
        return "0"
    for unit in ("d", "h", "min", "s", "ms"):
        ms = TIME_UNITS[unit]
        if value % ms == 0:
            return f"{int(value / ms)}{unit}"
    return f"{value}ms"


def display(setting: str | None, setting_unit: str | None) -> str:
    """``pg_settings.setting`` in the server's display form ("16384" 8kB -> "128MB").
    Negative sentinels (-1: "use the default", "disabled") stay as they are."""
    if setting is None:
        return ""
    kind, per_unit = unit_kind(setting_unit)
    if kind is None:
        return setting
    try:
        number = Decimal(setting)
    except InvalidOperation:
        return setting
    if number < 0:
        return setting
    if kind == "memory":
        return format_bytes(number * per_unit)
    return format_ms(number * per_unit)


def human_bytes(value: int | None) -> str:
    """A byte count for people: 17179869184 -> "16 GiB"."""
    if value is None:
        return "unknown"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            text = f"{size:.1f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
        size /= 1024
    return f"{value} B"


def is_close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
