"""A target's own ``pg_settings``: what each parameter accepts, and whether a value fits.

Every value of a change set is checked against the row the target itself reports
(vartype, min_val/max_val in the setting's unit, enumvals, context), so the portal
never needs a table of PostgreSQL versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dbops import sqlfiles
from dbops.configuration import units

NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
MAX_STRING = 1024
# Parameters the portal never changes: they run shell commands or load code on the
# server, or name the files the server starts from; a bad value may keep it from
# starting, which no reload could undo.
REFUSED = {
    "archive_command": "runs a shell command on the server",
    "archive_cleanup_command": "runs a shell command on the server",
    "archive_library": "loads a library into the server",
    "restore_command": "runs a shell command on the server",
    "recovery_end_command": "runs a shell command on the server",
    "ssl_passphrase_command": "runs a shell command on the server",
    "shared_preload_libraries": "loads libraries into the server at start",
    "session_preload_libraries": "loads libraries into every session",
    "local_preload_libraries": "loads libraries into every session",
    "dynamic_library_path": "decides which libraries the server loads",
    "data_directory": "names the files the server starts from",
    "config_file": "names the files the server starts from",
    "hba_file": "names the files the server starts from",
    "ident_file": "names the files the server starts from",
}


@dataclass(frozen=True)
class SettingInfo:
    """One ``pg_settings`` row."""

    name: str
    setting: str
    unit: str | None
    vartype: str
    min_val: str | None
    max_val: str | None
    enumvals: tuple[str, ...] | None
    context: str
    source: str = "default"
    sourcefile: str | None = None
    pending_restart: bool = False
    boot_val: str | None = None
    reset_val: str | None = None
    short_desc: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SettingInfo:
        enumvals = row.get("enumvals")
        return cls(
            name=row["name"],
            setting=row["setting"],
            unit=row.get("unit"),
            vartype=row["vartype"],
            min_val=row.get("min_val"),
            max_val=row.get("max_val"),
            enumvals=tuple(enumvals) if enumvals else None,
            context=row["context"],
            source=row.get("source") or "default",
            sourcefile=row.get("sourcefile"),
            pending_restart=bool(row.get("pending_restart")),
            boot_val=row.get("boot_val"),
            reset_val=row.get("reset_val"),
            short_desc=row.get("short_desc") or "",
        )

    @property
    def restart_required(self) -> bool:
        return self.context == "postmaster"

    @property
    def display(self) -> str:
        """The current value as ``SHOW`` prints it ("128MB", not "16384")."""
        return units.display(self.setting, self.unit)

    def bounds_text(self) -> str:
        if self.vartype == "enum":
            return "one of " + ", ".join(self.enumvals or ())
        if self.vartype == "bool":
            return "on or off"
        if self.vartype in ("integer", "real"):
            unit = f" × {self.unit}" if self.unit else ""
            return f"{self.min_val} .. {self.max_val}{unit}"
        return f"text of at most {MAX_STRING} characters"


@dataclass
class Checked:
    """A value checked against its ``pg_settings`` row."""

    ok: bool
    normalized: str = ""  # as pg_settings.setting would show it
    message: str = ""
    number: Decimal | None = field(default=None, repr=False)


def normalize_name(name: str) -> str:
    return (name or "").strip().lower()


def read(conn: psycopg.Connection, names: list[str]) -> dict[str, SettingInfo]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sqlfiles.load("config_settings"), {"names": list(names)})
        return {row["name"]: SettingInfo.from_row(row) for row in cur.fetchall()}


def parse_bool(text: str) -> bool | None:
    """The server's parse_bool: on/off, true/false, yes/no, 1/0 and unique prefixes."""
    value = text.strip().lower()
    if value in ("1", "0"):
        return value == "1"
    if not value:
        return None
    for word, meaning in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word.startswith(value):
            return meaning
    if value == "on":
        return True
    if len(value) >= 2 and "off".startswith(value):
        return False
    return None


def check(info: SettingInfo, text: str) -> Checked:
    """Whether ``text`` is a value the target accepts for this parameter."""
    text = "" if text is None else str(text)
    if info.vartype == "bool":
        parsed = parse_bool(text)
        if parsed is None:
            return Checked(False, message=f"“{text}” is not a boolean (on/off, true/false).")
        return Checked(True, "on" if parsed else "off")
    if info.vartype == "enum":
        wanted = text.strip().lower()
        for option in info.enumvals or ():
            if option.lower() == wanted:
                return Checked(True, option)
        return Checked(False, message=f"“{text}” is not one of {', '.join(info.enumvals or ())}.")
    if info.vartype in ("integer", "real"):
        integer = info.vartype == "integer"
        try:
            number = units.to_setting_unit(text, info.unit, integer=integer)
        except units.UnitError as exc:
            return Checked(False, message=exc.message)
        low, high = _bound(info.min_val), _bound(info.max_val)
        shown = units.display(str(number), info.unit)
        if (low is not None and number < low) or (high is not None and number > high):
            unit = f" {info.unit}" if info.unit else ""
            return Checked(
                False,
                number=number,
                message=f"{shown} ({number}{unit}) is outside the valid range "
                f"{info.min_val} .. {info.max_val}{unit} of {info.name}.",
            )
        normalized = str(int(number)) if integer else _plain(number)
        return Checked(True, normalized, number=number)
    # string
    if len(text) > MAX_STRING:
        return Checked(False, message=f"The value is longer than {MAX_STRING} characters.")
    if any(ch in text for ch in "\n\r\x00"):
        return Checked(False, message="The value may not contain line breaks or NUL.")
    return Checked(True, text)


def _bound(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _plain(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def same_value(info: SettingInfo, normalized: str) -> bool:
    """Whether ``pg_settings.setting`` of ``info`` equals a normalized value."""
    if info.vartype in ("integer", "real"):
        try:
            return units.is_close(float(info.setting), float(normalized))
        except ValueError:
            return False
    if info.vartype == "enum":
        return info.setting.lower() == normalized.lower()
    return info.setting == normalized


def display_value(info: SettingInfo, normalized: str) -> str:
    """A normalized value in the server's display form."""
    if info.vartype in ("integer", "real"):
        return units.display(normalized, info.unit)
    return normalized
