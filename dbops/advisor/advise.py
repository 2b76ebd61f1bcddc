"""From statements to suggestions: analyse each, merge those needing the same index, and
prove each with HypoPG where the target has it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg

from dbops.advisor import hypo, rules
from dbops.advisor.model import Candidate, Proof, Statement, Suggestion

ROLE_WORDS = {
    "=": "=",
    "in": "IN",
    "is_null": "IS NULL",
    "not_null": "IS NOT NULL",
    "bool": "a boolean test",
    "range": "a range",
    "between": "BETWEEN",
    "like_prefix": "LIKE 'prefix%'",
    "like": "LIKE",
    "ilike": "ILIKE",
    "sort": "ORDER BY",
    "join": "a join",
}


MAX_PROOF_STATEMENTS = 3


@dataclass
class Advice:
    """Suggestions to propose (proven, or unverified where HypoPG cannot tell) and the
    candidates HypoPG showed the planner would not use or that would not pay."""

    suggestions: list[Suggestion] = field(default_factory=list)
    rejected: list[Suggestion] = field(default_factory=list)
    extensions: hypo.Extensions | None = None


def describe(candidate: Candidate, statements: int, ext: hypo.Extensions | None) -> str:
    keys = ", ".join(f"{k.term.label} ({ROLE_WORDS.get(k.role, k.role)})" for k in candidate.keys)
    text = f"{statements} statement(s) on {candidate.table} use {keys}"
    notes = {
        "partial": (
            f"; only rows where {candidate.predicate.label} are wanted, so a partial index "
            "holds just those"
            if candidate.predicate
            else ""
        ),
        "sort": "; the index returns the rows already in ORDER BY order",
        "range": "; the range column comes last, after the equalities",
        "trigram": "; a pattern that may start with a wildcard needs a trigram index (pg_trgm)",
        "join": "; the planner probes this side once per row of the other",
        "or": "; an OR is served by one index per branch, combined by a BitmapOr",
        "expression": "; only an index on the expression itself serves it",
    }
    text += notes.get(candidate.shape, "")
    if any(k.opclass and k.opclass.endswith("pattern_ops") for k in candidate.keys):
        text += (
            "; the column's collation is not C, so LIKE 'prefix%' needs a pattern operator class"
        )
    text += "."
    if candidate.rows is not None and candidate.reltuples > 0 and candidate.shape != "sort":
        text += f" About {max(candidate.rows, 1):,.0f} of {candidate.reltuples:,.0f} rows to read."
    if candidate.shape == "trigram" and ext is not None and not ext.trigram:
        text += " Run CREATE EXTENSION pg_trgm first."
    return text


def _groups(verdict) -> list[tuple[Candidate, ...]]:
    """Candidates proven together: the branches of an OR, or the sides of a join, serve
    the statement only together; other candidates are proven each alone."""
    missing = verdict.missing
    if any(c.shape in ("or", "join") for c in missing):
        return [missing]
    return [(c,) for c in missing]


def suggest(
    statements: Iterable[Statement],
    catalog,
    *,
    settings: rules.Settings | None = None,
    conn: psycopg.Connection | None = None,
    ext: hypo.Extensions | None = None,
) -> Advice:
    s = settings or rules.Settings()
    catalog = list(catalog)
    merged: dict[tuple, tuple[tuple[Candidate, ...], list[Statement]]] = {}
    for st in statements:
        verdict = rules.analyse(st.query, catalog, s)
        for group in _groups(verdict):
            key = tuple(c.identity for c in group)
            merged.setdefault(key, (group, []))[1].append(st)
    advice = Advice(extensions=ext)
    for group, sts in merged.values():
        ranked = sorted(sts, key=lambda x: (-x.total_exec_time, -x.queryid))
        lead = ranked[0]
        if conn is not None:
            # Proven if it pays for one of the costliest statements that want it.
            proof = None
            for st in ranked[:MAX_PROOF_STATEMENTS]:
                found = hypo.prove(conn, ext, st.query, list(group), min_cost_cut=s.min_cost_cut)
                if proof is None or found.status == Proof.PROVEN:
                    proof, lead = found, st
                if found.status != Proof.REJECTED:
                    break
        else:
            proof = Proof(
                status=Proof.UNVERIFIED,
                reason=hypo.unverified_reason(ext, group[0]) or "Unverified.",
            )
        for candidate in group:
            suggestion = Suggestion(
                candidate=candidate,
                queryid=lead.queryid,
                query=lead.query,
                mean_exec_time=lead.mean_exec_time,
                calls=lead.calls,
                queryids=tuple(sorted(x.queryid for x in sts)),
                why=describe(candidate, len(sts), ext),
                proof=proof,
            )
            bucket = advice.rejected if proof.status == Proof.REJECTED else advice.suggestions
            bucket.append(suggestion)
    order = lambda x: (-x.mean_exec_time * x.calls, x.key)  # noqa: E731
    advice.suggestions.sort(key=order)
    advice.rejected.sort(key=order)
    return advice


def advise_on(
    conn: psycopg.Connection,
    statements: list[Statement],
    *,
    settings: rules.Settings | None = None,
) -> Advice:
    """Reads the catalog and extensions of the connected target, then suggests."""
    from dataclasses import replace

    from dbops.advisor.catalog import read_catalog

    ext = hypo.extensions(conn)
    s = replace(settings or rules.settings_from_django(), trigram=ext.trigram_installed)
    catalog = read_catalog(conn, [st.query for st in statements])
    return suggest(statements, catalog, settings=s, conn=conn if ext.hypopg else None, ext=ext)
