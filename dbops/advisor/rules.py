"""The candidate index for a statement, from its shape and the target's statistics.

For one table: a constant, selective condition (IS NULL, a boolean test) becomes a
partial index's WHERE; equality and IN columns come first, most selective first
(pg_stats), then one range, BETWEEN or LIKE 'prefix%' as the last column; ORDER BY
columns are appended after pure equalities (up to a change of direction). Columns stop
once few rows are left, and a trailing column that keeps more than 30 % of the rows
before it is dropped. A pattern that may start with a wildcard is served by a trigram
GIN index instead. Joins get an index on the probed side's join column; an OR gets one
index per branch (a BitmapOr)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings as django_settings

from dbops.advisor import coverage, estimate
from dbops.advisor.model import (
    EQUALITY_OPS,
    RANGE_OPS,
    TRIGRAM_OPS,
    Candidate,
    Key,
    PartialPredicate,
    Predicate,
    Shape,
    SortKey,
    TableInfo,
    TableRef,
    Term,
    Verdict,
)
from dbops.advisor.parse import shape_of

TRIGRAM_OPCLASS = "gin_trgm_ops"
PATTERN_OPCLASS = {"text": "text_pattern_ops", "character varying": "varchar_pattern_ops"}


@dataclass(frozen=True)
class Settings:
    # Tables with fewer rows are read whole faster than through any index (PgHero: 500).
    min_rows: int = 500
    # Columns are added until fewer rows than this are left.
    enough_rows: float = 50.0
    max_keys: int = 3
    # A trailing column must keep at most this share of the rows before it.
    useful_share: float = 0.3
    # A constant condition keeping at most this share makes the index partial.
    partial_max_share: float = 0.2
    # A join side is probed through an index when the other side keeps at most this
    # share of the probed side's rows.
    join_probe_share: float = 0.1
    # HypoPG: the estimated cost must drop by at least this share.
    min_cost_cut: float = 0.3
    # Whether pg_trgm is available on the target (None: not known).
    trigram: bool | None = None


def settings_from_django(**overrides) -> Settings:
    """Settings with ``DBOPS_ADVISOR`` (a dict in the Django settings) applied."""
    configured = dict(getattr(django_settings, "DBOPS_ADVISOR", {}) or {})
    configured.update(overrides)
    return replace(Settings(), **configured)


# --- resolving names -------------------------------------------------------------------------


def resolve_table(ref: TableRef, catalog) -> TableInfo | None:
    """The catalog entry a statement's table name means: its own schema if it names one,
    else the first schema on the search path that has it (unambiguous otherwise)."""
    matches = [t for t in catalog if t.name == ref.name]
    if ref.schema:
        return next((t for t in matches if t.schema == ref.schema), None)
    on_path = sorted(
        (t for t in matches if t.search_path_position is not None),
        key=lambda t: t.search_path_position,
    )
    if on_path:
        return on_path[0]
    return matches[0] if len(matches) == 1 else None


def _owner(qualifier: str | None, column: str, tables: dict[str, TableInfo]) -> str | None:
    if qualifier is not None:
        if qualifier in tables:
            return qualifier
        # schema.table names a table that has no alias (its alias is its name).
        schema, _, name = qualifier.rpartition(".")
        found = tables.get(name)
        return name if found is not None and found.schema == schema else None
    if len(tables) == 1:
        return next(iter(tables))
    having = [alias for alias, t in tables.items() if column in t.columns]
    return having[0] if len(having) == 1 else None


# --- one table ---------------------------------------------------------------------------------


def _partial(preds: list[Predicate], table: TableInfo, s: Settings):
    best = None
    for p in preds:
        if not p.constant or p.term.function or p.op not in ("is_null", "not_null", "bool"):
            continue
        stats = table.column(p.term.column)
        if stats is None or not stats.analysed:
            continue
        keep = estimate.share(p, table)
        if keep <= s.partial_max_share and (best is None or keep < best[1]):
            best = (p, keep)
    return best


def _key(p: Predicate, table: TableInfo) -> Key:
    opclass = None
    if p.op == "like_prefix":
        stats = table.column(p.term.column)
        if stats and not coverage.collation_is_c(stats.collation, table):
            opclass = PATTERN_OPCLASS.get(stats.type, "text_pattern_ops")
    return Key(term=p.term, role=p.op, opclass=opclass)


def _sortable(shape: Shape, preds: list[Predicate], alias: str, owners: dict) -> list[SortKey]:
    """ORDER BY keys an index on this table can deliver after its equality columns."""
    if shape.kind != "select" or not shape.sort:
        return []
    if any(owners.get(id(k)) != alias for k in shape.sort):
        return []
    if any(p.op in ("in", "range", "between", "like_prefix", "like", "ilike") for p in preds):
        return []
    out = []
    for k in shape.sort:
        if k.desc != shape.sort[0].desc:
            break  # an index scanned backwards serves a uniform reversal only
        out.append(k)
    return out


def table_candidate(
    table: TableInfo,
    preds: list[Predicate],
    sort: list[SortKey],
    s: Settings,
    *,
    shape_name: str = "",
) -> tuple[Candidate | None, str]:
    """The index this table needs for these conditions and ORDER BY, or why none."""
    if 0 <= table.reltuples < s.min_rows:
        return None, f"Small table ({table.reltuples:,.0f} rows, under {s.min_rows:,})"
    preds = [p for p in preds if p.term.column in table.columns]
    if not preds and not sort:
        return None, "No columns to index"
    total = max(table.reltuples, 0.0) or 1000.0
    partial = _partial(preds, table, s)
    rows = total
    predicate = None
    if partial is not None:
        p, keep = partial
        predicate = PartialPredicate(column=p.term.column, op=p.op, negated=p.negated)
        rows = total * keep
        preds = [q for q in preds if q is not p]
    keys: list[Key] = []
    progression = [rows]
    usable = [p for p in preds if p.op in EQUALITY_OPS | RANGE_OPS | TRIGRAM_OPS]
    ranked = sorted(usable, key=lambda p: (estimate.share(p, table), p.term.label))
    if ranked and ranked[0].op in TRIGRAM_OPS and (partial is None or rows >= s.enough_rows):
        p = ranked[0]
        if s.trigram is False:
            return None, (
                f"{p.term.label} {p.operator} a pattern that may start with a wildcard needs a "
                "trigram index, and pg_trgm is not available on this server"
            )
        key = Key(term=p.term, role=p.op, opclass=TRIGRAM_OPCLASS)
        return Candidate(
            schema=table.schema,
            table=table.name,
            method="gin",
            keys=(key,),
            predicate=predicate,
            shape="trigram",
            rows=rows * estimate.share(p, table),
            reltuples=table.reltuples,
        ), ""
    equalities = [p for p in ranked if p.op in EQUALITY_OPS]
    ranges = [p for p in ranked if p.op in RANGE_OPS]
    seen: set[Term] = set()
    stopped = partial is not None and rows < s.enough_rows
    for p in equalities:
        if stopped or len(keys) >= s.max_keys:
            break
        if p.term in seen:
            continue
        seen.add(p.term)
        keys.append(_key(p, table))
        rows *= estimate.share(p, table)
        progression.append(rows)
        stopped = rows < s.enough_rows
    if ranges and not stopped and len(keys) < s.max_keys and ranges[0].term not in seen:
        p = ranges[0]
        seen.add(p.term)
        keys.append(_key(p, table))
        rows *= estimate.share(p, table)
        progression.append(rows)
        stopped = True
    for k in sort:
        if stopped or len(keys) >= s.max_keys:
            break
        if k.term in seen or (predicate and k.term.column == predicate.column):
            continue
        seen.add(k.term)
        keys.append(Key(term=k.term, role="sort"))
        rows *= estimate.sort_share(k.term.column, table)
        progression.append(rows)
        stopped = rows < s.enough_rows
    # A trailing column that hardly narrows only makes the index bigger.
    while keys and progression[-1] > progression[-2] * s.useful_share:
        keys.pop()
        progression.pop()
    if not keys and predicate is not None:
        keys = [Key(term=Term(predicate.column), role=predicate.op)]
    if not keys:
        return None, "No selective column: the conditions keep most rows, a sequential scan wins"
    kinds = {k.role for k in keys}
    name = shape_name or (
        "partial"
        if predicate
        else "sort"
        if "sort" in kinds
        else "range"
        if kinds & RANGE_OPS
        else "expression"
        if any(k.term.function for k in keys)
        else "equality"
    )
    return Candidate(
        schema=table.schema,
        table=table.name,
        method="btree",
        keys=tuple(keys),
        predicate=predicate,
        shape=name,
        rows=progression[-1],
        reltuples=table.reltuples,
    ), ""


def _filtered_rows(table: TableInfo, preds: list[Predicate]) -> float:
    rows = max(table.reltuples, 0.0)
    for p in preds:
        if p.term.column in table.columns:
            rows *= estimate.share(p, table)
    return rows


# --- one statement ------------------------------------------------------------------------------


def analyse(query: str | None, catalog, s: Settings | None = None) -> Verdict:
    """The candidates a statement needs, which of them existing indexes cover, or why
    there is none."""
    s = s or Settings()
    shape = shape_of(query)
    if shape.error:
        return Verdict(reason=shape.error)
    if any(
        (ref.schema in ("pg_catalog", "information_schema") or ref.name.startswith("pg_"))
        for ref in shape.tables.values()
    ):
        return Verdict(reason="System table")
    tables: dict[str, TableInfo] = {}
    for alias, ref in shape.tables.items():
        found = resolve_table(ref, catalog)
        if found is not None:
            tables[alias] = found
    if not tables:
        return Verdict(reason="Table not found (or its statistics cannot be read)")
    by_alias: dict[str, list[Predicate]] = {alias: [] for alias in tables}
    for p in shape.conjuncts:
        owner = _owner(p.qualifier, p.term.column, tables)
        if owner is not None:
            by_alias[owner].append(p)
    owners = {id(k): _owner(k.qualifier, k.term.column, tables) for k in shape.sort}
    candidates: list[Candidate] = []
    reasons: list[str] = []
    for alias, table in tables.items():
        sort = _sortable(shape, by_alias[alias], alias, owners)
        found, why = table_candidate(table, by_alias[alias], sort, s)
        if found is not None:
            candidates.append(found)
        elif why:
            reasons.append(why)
    candidates.extend(_or_candidates(shape, tables, by_alias, candidates, s))
    join_reasons: list[str] = []
    candidates.extend(_join_candidates(shape, tables, by_alias, s, join_reasons))
    reasons = join_reasons + reasons
    unique: dict[tuple, Candidate] = {}
    for c in candidates:
        unique.setdefault(c.identity, c)
    if not unique:
        return Verdict(reason=reasons[0] if reasons else "No columns to index")
    covered = {}
    for c in unique.values():
        table = next(t for t in tables.values() if (t.schema, t.name) == (c.schema, c.table))
        index = coverage.covering_index(c, table)
        if index is not None:
            covered[c.identity] = index.name
    return Verdict(candidates=tuple(unique.values()), covered_by=covered)


def _or_candidates(shape, tables, by_alias, found, s) -> list[Candidate]:
    """One index per branch of an OR, when every branch has one (a BitmapOr needs all)."""
    if not shape.or_groups or len(tables) != 1:
        return []
    alias, table = next(iter(tables.items()))
    if any(c.rows is not None and c.rows < s.enough_rows for c in found):
        return []  # the other conditions already find few rows
    out: list[Candidate] = []
    for group in shape.or_groups:
        branch_candidates = []
        for branch in group:
            preds = by_alias[alias] + [p for p in branch if p.qualifier in (None, alias)]
            c, _ = table_candidate(table, preds, [], s, shape_name="or")
            if c is None:
                break
            branch_candidates.append(c)
        else:
            out.extend(branch_candidates)
    return out


def _join_candidates(shape, tables, by_alias, s, reasons) -> list[Candidate]:
    """An index on the join column of the side the planner probes once per outer row:
    the side whose own conditions leave the most rows, when the other leaves few."""
    out: list[Candidate] = []
    for join in shape.joins:
        left = _owner(join.left, join.left_term.column, tables)
        right = _owner(join.right, join.right_term.column, tables)
        if left is None or right is None or left == right:
            continue
        if not by_alias[left] and not by_alias[right]:
            reasons.append(
                "Join without a condition on either table: both are read whole and a hash "
                "join needs no index"
            )
            continue
        sides = [
            (left, join.left_term, _filtered_rows(tables[left], by_alias[left])),
            (right, join.right_term, _filtered_rows(tables[right], by_alias[right])),
        ]
        (_, _, outer_rows), (probed, term, _) = sorted(sides, key=lambda x: x[2])
        table = tables[probed]
        if 0 <= table.reltuples < s.min_rows or term.column not in table.columns:
            continue
        if outer_rows > table.reltuples * s.join_probe_share:
            continue
        probe = Predicate(None, term, "=")
        preds = [p for p in by_alias[probed] if p.op in ("=", "is_null", "bool")]
        c, _ = table_candidate(table, [*preds, probe], [], replace(s, useful_share=1.0))
        if c is not None and any(k.term == term for k in c.keys):
            keys = tuple(replace(k, role="join") if k.term == term else k for k in c.keys)
            out.append(replace(c, keys=keys, shape="join"))
    return out
