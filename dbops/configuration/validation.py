"""Validation against a live target: its pg_settings, its facts, the enabled rules.
Used before anyone approves (proposal) and again at apply (the procedure)."""

from __future__ import annotations

import psycopg

from dbops.configuration import rules
from dbops.configuration import settings as pg
from dbops.configuration.facts import target_facts
from dbops.configuration.models import ConfigurationRule
from dbops.connections import TargetUnavailable, connect, query_failure
from dbops.models import DatabaseTarget
from portal.errors import Invalid


def enabled_rules() -> list[rules.RuleSpec]:
    return [rule.spec() for rule in ConfigurationRule.objects.filter(enabled=True)]


def clean_entries(raw: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Names lower-cased and stripped; blank rows dropped; duplicates and oversize sets
    refused with a message naming the problem."""
    entries, seen = [], set()
    for name, value in raw:
        name, value = pg.normalize_name(name), ("" if value is None else str(value).strip())
        if not name and not value:
            continue
        if not name:
            raise Invalid(f"A row gives the value “{value}” but no parameter.")
        if not value:
            raise Invalid(f"{name}: give the new value.")
        if name in seen:
            raise Invalid(f"{name} appears twice in the set; give each parameter once.")
        seen.add(name)
        entries.append((name, value))
    if not entries:
        raise Invalid("Give at least one parameter and its new value.")
    if len(entries) > rules.MAX_ENTRIES:
        raise Invalid(f"At most {rules.MAX_ENTRIES} parameters in one set.")
    return entries


def validate_on(
    conn: psycopg.Connection, target: DatabaseTarget, entries: list[tuple[str, str]]
) -> rules.Validation:
    names = list(dict.fromkeys([n for n, _ in entries] + list(rules.CONTEXT_PARAMETERS)))
    valid_names = [n for n in names if pg.NAME.match(n)]
    infos = pg.read(conn, valid_names)
    return rules.validate(entries, infos, target_facts(target, conn), enabled_rules())


def validate(target: DatabaseTarget, entries: list[tuple[str, str]]) -> rules.Validation:
    try:
        with connect(target) as conn:
            return validate_on(conn, target, entries)
    except TargetUnavailable as exc:
        raise Invalid(exc.message) from None
    except psycopg.Error as exc:
        raise Invalid(f"Reading pg_settings failed: {query_failure(exc)}") from None
