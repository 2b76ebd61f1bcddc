"""Row estimates from pg_stats, as the planner makes them for a generic parameter: the
share of a table's rows a condition keeps."""

from __future__ import annotations

from dbops.advisor.model import ColumnStats, Predicate, TableInfo

# PostgreSQL's own defaults when a column has no statistics (selfuncs.h).
DEFAULT_NUM_DISTINCT = 200.0
DEFAULT_NULL_FRAC = 0.005
# A range, BETWEEN or pattern on an unknown value: a slice of the table, as PgHero
# assumes (the planner's generic 1/3 would make every range look useless).
RANGE_SHARE = 0.1
BETWEEN_SHARE = 0.05
PATTERN_SHARE = 0.1


def distinct_values(n_distinct: float | None, reltuples: float) -> float | None:
    """pg_stats.n_distinct as a count: negative values are a fraction of the rows."""
    if n_distinct is None or n_distinct == 0:
        return None
    if n_distinct > 0:
        return n_distinct
    return -n_distinct * reltuples if reltuples > 0 else None


def _distinct(stats: ColumnStats | None, reltuples: float) -> float:
    found = distinct_values(stats.n_distinct if stats else None, reltuples)
    return max(found or DEFAULT_NUM_DISTINCT, 1.0)


def _null_frac(stats: ColumnStats | None) -> float:
    if stats is None or stats.null_frac is None:
        return DEFAULT_NULL_FRAC if not (stats and stats.analysed) else 0.0
    return stats.null_frac


def equality_share(stats: ColumnStats | None, reltuples: float, literal=None) -> float:
    """Share of rows equal to one value: its own frequency when it is a most common
    value, else the rest spread over the other distinct values (as eqsel does)."""
    nulls = _null_frac(stats)
    distinct = _distinct(stats, reltuples)
    if stats is not None and stats.most_common_vals:
        if literal is not None:
            text = ("t" if literal else "f") if isinstance(literal, bool) else str(literal)
            for value, freq in zip(stats.most_common_vals, stats.most_common_freqs, strict=False):
                if value == text:
                    return freq
        rest = max(1.0 - nulls - sum(stats.most_common_freqs), 0.0)
        others = distinct - len(stats.most_common_vals)
        if others >= 1 and literal is not None:
            return min(rest / others, 1.0)
        if literal is None:
            return min((1.0 - nulls) / distinct, 1.0)
        return min(rest, 1.0 / distinct)
    return min((1.0 - nulls) / distinct, 1.0)


def bool_share(stats: ColumnStats | None, negated: bool) -> float:
    wanted = "f" if negated else "t"
    if stats is not None:
        for value, freq in zip(stats.most_common_vals, stats.most_common_freqs, strict=False):
            if value == wanted:
                return freq
        if stats.analysed and stats.most_common_vals:
            return max(1.0 - sum(stats.most_common_freqs) - _null_frac(stats), 0.0)
    return 0.5


def share(predicate: Predicate, table: TableInfo) -> float:
    """The share of the table's rows the predicate keeps (0..1)."""
    stats = table.column(predicate.term.column)
    if predicate.term.function:
        stats = None if stats is None else ColumnStats(n_distinct=stats.n_distinct)
    op = predicate.op
    if op == "=":
        # The index serves every value the statement is called with: estimate a generic
        # one, as pg_stat_statements shows $1 anyway (and as PgHero does).
        return equality_share(stats, table.reltuples)
    if op == "in":
        return min(predicate.values * equality_share(stats, table.reltuples), 1.0)
    if op == "is_null":
        return _null_frac(stats)
    if op == "not_null":
        return 1.0 - _null_frac(stats)
    if op == "bool":
        return bool_share(stats, predicate.negated)
    if op == "range" or op == "like_prefix":
        return RANGE_SHARE
    if op == "between":
        return BETWEEN_SHARE
    if op in ("like", "ilike"):
        return PATTERN_SHARE
    if op in ("<>", "not_in"):
        return max(1.0 - predicate.values * equality_share(stats, table.reltuples), 0.0)
    return 1.0


def sort_share(column: str, table: TableInfo) -> float:
    """How much an ORDER BY column narrows, read as PgHero does: one value's share."""
    return 1.0 / _distinct(table.column(column), table.reltuples)
