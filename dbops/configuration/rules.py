"""The seed's CONFIG_VALIDATION, evaluated: rules, dependencies and constraints.

Pure functions over plain data: the rules (rows an admin edits, passed in as
``RuleSpec``), the target's ``pg_settings`` rows and the facts about its host. Each
verdict names the rule, the value it judged and the limit it held it to.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from dbops.configuration import settings as pg
from dbops.configuration import units

# What kind of rule each check is (the seed's rules / dependencies / constraints).
RANGE = "RANGE"
SYSTEM_MEMORY = "SYSTEM_MEMORY"
CONCURRENT_USERS = "CONCURRENT_USERS"
TOTAL_MEMORY_LIMIT = "TOTAL_MEMORY_LIMIT"
PERFORMANCE_REQUIREMENTS = "PERFORMANCE_REQUIREMENTS"
KIND_OF = {
    RANGE: "RULE",
    SYSTEM_MEMORY: "DEPENDENCY",
    CONCURRENT_USERS: "DEPENDENCY",
    TOTAL_MEMORY_LIMIT: "CONSTRAINT",
    PERFORMANCE_REQUIREMENTS: "CONSTRAINT",
}
# The inputs of the TOTAL_MEMORY_LIMIT formula: a set touching one needs the RAM.
MEMORY_INPUTS = (
    "shared_buffers",
    "max_connections",
    "work_mem",
    "autovacuum_max_workers",
    "maintenance_work_mem",
    "autovacuum_work_mem",
    "wal_buffers",
)
# Read from the target for every validation, whatever the set names.
CONTEXT_PARAMETERS = (*MEMORY_INPUTS, "superuser_reserved_connections", "wal_segment_size")
MAX_ENTRIES = 50


@dataclass(frozen=True)
class RuleSpec:
    code: str
    check: str
    parameter: str = ""
    minimum: str = ""
    maximum: str = ""
    factor: Decimal | None = None
    share_percent: int | None = None
    headroom_percent: int | None = None
    description: str = ""

    @property
    def kind(self) -> str:
        return KIND_OF.get(self.check, "RULE")


@dataclass(frozen=True)
class Facts:
    """What the rules need to know about the target beyond pg_settings."""

    ram_bytes: int | None = None
    ram_source: str = ""
    cpus: int | None = None
    storage: str = ""
    users_configured: int | None = None
    users_observed: int | None = None
    users_observed_source: str = ""

    @property
    def concurrent_users(self) -> int | None:
        known = [n for n in (self.users_configured, self.users_observed) if n is not None]
        return max(known) if known else None


@dataclass(frozen=True)
class Verdict:
    rule: str
    kind: str  # RULE | DEPENDENCY | CONSTRAINT | PG_SETTINGS | CONTEXT
    parameter: str
    passed: bool
    value: str
    limit: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EntryResult:
    parameter: str
    value: str  # as given
    info: pg.SettingInfo | None = None
    normalized: str = ""
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def restart_required(self) -> bool:
        return bool(self.info and self.info.restart_required)

    @property
    def current(self) -> str:
        return self.info.display if self.info else ""

    @property
    def new_display(self) -> str:
        if self.info is None or not self.normalized:
            return self.value
        return pg.display_value(self.info, self.normalized)


@dataclass
class Validation:
    entries: list[EntryResult]
    set_verdicts: list[Verdict]

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries) and all(v.passed for v in self.set_verdicts)

    @property
    def verdicts(self) -> list[Verdict]:
        return [v for e in self.entries for v in e.verdicts] + self.set_verdicts

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]

    @property
    def restart_required(self) -> list[str]:
        return [e.parameter for e in self.entries if e.restart_required]

    def summary(self) -> str:
        failed = self.failures
        if not failed:
            return "Every rule passed."
        return "; ".join(f"{v.rule}: {v.message}" for v in failed)


def validate(
    entries: list[tuple[str, str]],
    settings: dict[str, pg.SettingInfo],
    facts: Facts,
    rules: list[RuleSpec],
) -> Validation:
    """Judge a change set. ``settings`` holds the target's rows for the set's parameters
    and CONTEXT_PARAMETERS; a parameter missing from it is unknown to the target."""
    results = [_entry(name, value, settings, rules) for name, value in entries]
    names = {r.parameter for r in results}
    verdicts: list[Verdict] = []
    resulting = _Resulting(settings, {r.parameter: r for r in results if r.ok})
    for rule in rules:
        if rule.check == SYSTEM_MEMORY and names & set(MEMORY_INPUTS):
            verdicts.append(_system_memory(rule, facts))
        elif rule.check == CONCURRENT_USERS and "max_connections" in names:
            verdicts.append(_concurrent_users(rule, facts))
        elif rule.check == TOTAL_MEMORY_LIMIT and names & set(MEMORY_INPUTS):
            verdicts.append(_total_memory(rule, facts, resulting))
        elif rule.check == PERFORMANCE_REQUIREMENTS and "max_connections" in names:
            verdicts.append(_performance(rule, facts, resulting))
    return Validation(results, verdicts)


def _entry(
    name: str, value: str, settings: dict[str, pg.SettingInfo], rules: list[RuleSpec]
) -> EntryResult:
    result = EntryResult(parameter=name, value=value)
    info = settings.get(name)
    if info is None or not pg.NAME.match(name):
        result.verdicts.append(
            Verdict(
                "PG_SETTINGS",
                "PG_SETTINGS",
                name,
                False,
                value,
                "a parameter in pg_settings",
                f"“{name}” is not a parameter this server knows (unknown parameters are refused).",
            )
        )
        return result
    result.info = info
    if name in pg.REFUSED:
        result.verdicts.append(
            Verdict(
                "PORTAL_POLICY",
                "PG_SETTINGS",
                name,
                False,
                value,
                "not changed by the portal",
                f"{name} {pg.REFUSED[name]}; change it by hand outside the portal.",
            )
        )
        return result
    if info.context == "internal":
        result.verdicts.append(
            Verdict(
                "PG_SETTINGS",
                "PG_SETTINGS",
                name,
                False,
                value,
                "a settable parameter",
                f"{name} is fixed when the server is built or initialised (context internal).",
            )
        )
        return result
    checked = pg.check(info, value)
    result.verdicts.append(
        Verdict(
            "PG_SETTINGS",
            "PG_SETTINGS",
            name,
            checked.ok,
            value,
            info.bounds_text(),
            checked.message or f"{info.vartype} within the server's bounds.",
        )
    )
    if not checked.ok:
        return result
    result.normalized = checked.normalized
    if info.restart_required:
        result.verdicts.append(
            Verdict(
                "CONTEXT",
                "CONTEXT",
                name,
                True,
                value,
                "postmaster",
                f"Restart required: {name} takes effect only when the server restarts.",
            )
        )
    for rule in rules:
        if rule.check == RANGE and rule.parameter == name:
            result.verdicts.append(_range(rule, info, checked))
    return result


def _range(rule: RuleSpec, info: pg.SettingInfo, checked: pg.Checked) -> Verdict:
    shown = pg.display_value(info, checked.normalized)
    bounds = [(">=", rule.minimum), ("<=", rule.maximum)]
    limit = " and ".join(f"{op} {text}" for op, text in bounds if text)
    if info.vartype not in ("integer", "real") or checked.number is None:
        return Verdict(
            rule.code,
            "RULE",
            info.name,
            False,
            shown,
            limit,
            f"{info.name} is not numeric; the rule cannot judge it.",
        )
    passed = True
    for op, text in bounds:
        if not text:
            continue
        try:
            bound = units.to_setting_unit(text, info.unit, integer=False)
        except units.UnitError as exc:
            return Verdict(
                rule.code,
                "RULE",
                info.name,
                False,
                shown,
                limit,
                f"The rule's limit cannot be read: {exc.message}",
            )
        passed = passed and (checked.number >= bound if op == ">=" else checked.number <= bound)
    message = (
        f"{info.name} = {shown} is within {limit}."
        if passed
        else f"{info.name} = {shown} is not {limit}."
    )
    return Verdict(rule.code, "RULE", info.name, passed, shown, limit, message)


def _system_memory(rule: RuleSpec, facts: Facts) -> Verdict:
    if facts.ram_bytes:
        return Verdict(
            rule.code,
            "DEPENDENCY",
            "",
            True,
            units.human_bytes(facts.ram_bytes),
            "known",
            f"The target's RAM is {units.human_bytes(facts.ram_bytes)} ({facts.ram_source}).",
        )
    return Verdict(
        rule.code,
        "DEPENDENCY",
        "",
        False,
        "unknown",
        "known",
        "The target's RAM is unknown: configure it on the target (memory settings are "
        "judged against it).",
    )


def _concurrent_users(rule: RuleSpec, facts: Facts) -> Verdict:
    users = facts.concurrent_users
    if users is None:
        return Verdict(
            rule.code,
            "DEPENDENCY",
            "",
            False,
            "unknown",
            "known",
            "The expected number of concurrent users is unknown: configure it on the target.",
        )
    configured = facts.users_configured if facts.users_configured is not None else "—"
    observed = facts.users_observed if facts.users_observed is not None else "—"
    return Verdict(
        rule.code,
        "DEPENDENCY",
        "",
        True,
        str(users),
        "known",
        f"{users} concurrent users: configured {configured}, observed peak {observed}"
        f"{f' ({facts.users_observed_source})' if facts.users_observed_source else ''}.",
    )


class _Resulting:
    """The value each parameter will have once the set is applied, in bytes or units."""

    def __init__(self, settings: dict[str, pg.SettingInfo], entries: dict[str, EntryResult]):
        self.settings, self.entries = settings, entries

    def number(self, name: str) -> Decimal | None:
        entry = self.entries.get(name)
        text = entry.normalized if entry else (self.settings.get(name) or _missing).setting
        try:
            return Decimal(text)
        except (ArithmeticError, TypeError, ValueError):
            return None

    def bytes(self, name: str) -> int | None:
        info = self.settings.get(name)
        number = self.number(name)
        if info is None or number is None:
            return None
        _kind, per_unit = units.unit_kind(info.unit)
        return int(number * per_unit)

    def wal_buffers(self) -> int:
        value = self.bytes("wal_buffers")
        if value is not None and value >= 0:
            return value
        # -1: 1/32 of shared_buffers, at least 64kB, at most one WAL segment.
        segment = self.bytes("wal_segment_size") or 16 * 1024**2
        shared = self.bytes("shared_buffers") or 0
        return int(min(max(shared / 32, 64 * 1024), segment))


_missing = pg.SettingInfo("", "", None, "string", None, None, None, "user")


def _total_memory(rule: RuleSpec, facts: Facts, r: _Resulting) -> Verdict:
    share = rule.share_percent or 75
    factor = rule.factor if rule.factor is not None else Decimal(1)
    limit_text = f"<= {share}% of RAM"
    if not facts.ram_bytes:
        return Verdict(
            rule.code,
            "CONSTRAINT",
            "",
            False,
            "not computed",
            limit_text,
            "Cannot be checked while the target's RAM is unknown (SYSTEM_MEMORY).",
        )
    shared = r.bytes("shared_buffers") or 0
    connections = int(r.number("max_connections") or 0)
    work_mem = r.bytes("work_mem") or 0
    workers = int(r.number("autovacuum_max_workers") or 0)
    maintenance = r.bytes("maintenance_work_mem") or 0
    autovacuum_mem = r.bytes("autovacuum_work_mem")
    per_worker = (
        autovacuum_mem if autovacuum_mem is not None and autovacuum_mem >= 0 else maintenance
    )
    wal = r.wal_buffers()
    total = shared + int(connections * work_mem * factor) + workers * per_worker + wal
    allowed = int(facts.ram_bytes * share / 100)
    passed = total <= allowed
    formula = (
        f"shared_buffers {units.human_bytes(shared)} + {connections} max_connections × "
        f"work_mem {units.human_bytes(work_mem)} × {factor} + {workers} autovacuum workers × "
        f"{units.human_bytes(per_worker)} + wal_buffers {units.human_bytes(wal)}"
    )
    return Verdict(
        rule.code,
        "CONSTRAINT",
        "",
        passed,
        units.human_bytes(total),
        f"{limit_text} = {units.human_bytes(allowed)}",
        f"{formula} = {units.human_bytes(total)}, "
        f"{'within' if passed else 'more than'} {share}% of "
        f"{units.human_bytes(facts.ram_bytes)} RAM ({units.human_bytes(allowed)}).",
    )


def _performance(rule: RuleSpec, facts: Facts, r: _Resulting) -> Verdict:
    users = facts.concurrent_users
    headroom = rule.headroom_percent if rule.headroom_percent is not None else 20
    connections = int(r.number("max_connections") or 0)
    if users is None:
        return Verdict(
            rule.code,
            "CONSTRAINT",
            "",
            False,
            str(connections),
            "not computed",
            "Cannot be checked while the number of concurrent users is unknown (CONCURRENT_USERS).",
        )
    reserved = int(r.number("superuser_reserved_connections") or 0)
    needed = math.ceil(users * (1 + headroom / 100)) + reserved
    passed = connections >= needed
    return Verdict(
        rule.code,
        "CONSTRAINT",
        "max_connections",
        passed,
        str(connections),
        f">= {needed}",
        f"max_connections {connections} {'covers' if passed else 'does not cover'} "
        f"{users} concurrent users + {headroom}% headroom + {reserved} reserved for "
        f"superusers = {needed}.",
    )
