"""Query-performance analysis: pure functions over statistics already read from a target.

Statements are parsed with pglast (PostgreSQL's own parser), never with regular
expressions. Nothing here connects to a database, so every rule is tested directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind, BoolExprType, SetOperation
from pglast.parser import ParseError, fingerprint
from psycopg import sql

# A table read by sequential scans for more than this share of its scans is flagged.
MAX_SEQ_SCAN_INDEX_SHARE = 0.95
MIN_TABLE_ROWS = 10_000
# Columns are added to a suggested index, most selective first, until the estimated
# matching rows drop to this many; more columns would only make the index bigger.
ENOUGH_ROWS = 50
MAX_INDEX_COLUMNS = 3
# An index matching more than this share of the rows would rarely beat a sequential
# scan (the planner would not use it), so it is not suggested.
MAX_MATCHING_SHARE = 0.1
POSTGRES_MAX_IDENTIFIER = 63


@dataclass(frozen=True)
class Statement:
    queryid: int
    query: str
    calls: int
    total_exec_time: float
    mean_exec_time: float
    rows: int
    share: float | None = None


@dataclass(frozen=True)
class TableRef:
    schema: str | None
    name: str


@dataclass(frozen=True)
class EqualityPredicates:
    """A single-table statement and the columns its WHERE compares with = or IN."""

    table: TableRef
    columns: tuple[str, ...]


@dataclass
class StatementGroup:
    fingerprint: str
    query: str
    queryids: list[int] = field(default_factory=list)
    calls: int = 0
    total_exec_time: float = 0.0
    rows: int = 0

    @property
    def variants(self) -> int:
        return len(self.queryids)

    @property
    def mean_exec_time(self) -> float:
        return self.total_exec_time / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class TableScans:
    schema: str
    name: str
    seq_scan: int
    idx_scan: int | None
    n_live_tup: int
    seq_tup_read: int = 0

    @property
    def index_share(self) -> float:
        scans = self.seq_scan + (self.idx_scan or 0)
        return (self.idx_scan or 0) / scans if scans else 1.0


@dataclass(frozen=True)
class TableCatalog:
    """What the target's catalog says about one table."""

    schema: str
    name: str
    reltuples: float
    # Column name -> pg_stats.n_distinct (None when pg_stats has no row or is hidden).
    columns: dict[str, float | None]
    # Key columns of each valid, non-partial index, in order (None for an expression).
    indexes: list[tuple[str | None, ...]]
    search_path_position: int | None = None


@dataclass(frozen=True)
class Suggestion:
    schema: str
    table: str
    columns: tuple[str, ...]
    queryid: int
    query: str
    mean_exec_time: float
    calls: int
    queryids: tuple[int, ...]
    why: str

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.table}({','.join(self.columns)})"

    @property
    def label(self) -> str:
        table = self.table if self.schema == "public" else f"{self.schema}.{self.table}"
        return f"{table}({', '.join(self.columns)})"

    @property
    def index_name(self) -> str:
        return index_name(self.table, self.columns)


# --- parsing ----------------------------------------------------------------------------


def _single_table(stmt: ast.Node) -> tuple[ast.RangeVar, ast.Node | None] | None:
    """The one table a statement reads and its WHERE clause; None for joins, sub-selects
    in FROM, set operations and CTEs."""
    if isinstance(stmt, ast.SelectStmt):
        if stmt.withClause or (stmt.op is not None and stmt.op != SetOperation.SETOP_NONE):
            return None
        from_clause = stmt.fromClause or ()
        if len(from_clause) != 1 or not isinstance(from_clause[0], ast.RangeVar):
            return None
        return from_clause[0], stmt.whereClause
    if isinstance(stmt, ast.UpdateStmt):
        if stmt.withClause or stmt.fromClause:
            return None
        return stmt.relation, stmt.whereClause
    if isinstance(stmt, ast.DeleteStmt):
        if stmt.withClause or stmt.usingClause:
            return None
        return stmt.relation, stmt.whereClause
    return None


def _conjuncts(where: ast.Node | None) -> list[ast.Node]:
    if where is None:
        return []
    if isinstance(where, ast.BoolExpr) and where.boolop == BoolExprType.AND_EXPR:
        out: list[ast.Node] = []
        for arg in where.args:
            out.extend(_conjuncts(arg))
        return out
    return [where]


def _is_value(node: ast.Node | None) -> bool:
    """A parameter or a constant, possibly cast: what the statement compares a column to."""
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return isinstance(node, ast.ParamRef | ast.A_Const)


def _column(node: ast.Node | None, table: ast.RangeVar) -> str | None:
    """The column name of a reference to the statement's table, else None."""
    if not isinstance(node, ast.ColumnRef):
        return None
    names = [f.sval for f in node.fields if isinstance(f, ast.String)]
    if len(names) != len(node.fields):
        return None  # table.*
    if len(names) == 1:
        return names[0]
    qualifier = names[:-1]
    alias = table.alias.aliasname if table.alias else None
    allowed = [[alias]] if alias else [[table.relname], [table.schemaname, table.relname]]
    return names[-1] if qualifier in allowed else None


def _equality_column(expr: ast.Node, table: ast.RangeVar) -> str | None:
    if not isinstance(expr, ast.A_Expr):
        return None
    if [n.sval for n in expr.name or () if isinstance(n, ast.String)] != ["="]:
        return None
    if expr.kind == A_Expr_Kind.AEXPR_OP:
        if _is_value(expr.rexpr):
            return _column(expr.lexpr, table)
        if _is_value(expr.lexpr):
            return _column(expr.rexpr, table)
        return None
    if expr.kind == A_Expr_Kind.AEXPR_IN:
        values = expr.rexpr if isinstance(expr.rexpr, tuple | list) else ()
        if values and all(_is_value(v) for v in values):
            return _column(expr.lexpr, table)
        return None
    if expr.kind == A_Expr_Kind.AEXPR_OP_ANY and _is_value(expr.rexpr):
        return _column(expr.lexpr, table)  # col = ANY($1)
    return None


def equality_predicates(query: str) -> EqualityPredicates | None:
    """The table and the equality/IN columns of a single-table statement, in the order
    they appear; None if the statement cannot be parsed or reads several tables."""
    try:
        parsed = parse_sql(query)
    except ParseError:
        return None
    if len(parsed) != 1:
        return None
    found = _single_table(parsed[0].stmt)
    if found is None:
        return None
    table, where = found
    columns: list[str] = []
    for conjunct in _conjuncts(where):
        column = _equality_column(conjunct, table)
        if column is not None and column not in columns:
            columns.append(column)
    if not columns:
        return None
    return EqualityPredicates(
        table=TableRef(schema=table.schemaname or None, name=table.relname),
        columns=tuple(columns),
    )


def query_fingerprint(query: str) -> str | None:
    try:
        return fingerprint(query)
    except ParseError:
        return None


# --- grouping and scans -------------------------------------------------------------------


def group_statements(statements: Iterable[Statement]) -> list[StatementGroup]:
    """Statements that differ only in constants, IN-list lengths, case or spacing share
    a group (libpg_query's fingerprint); unparsable ones stay alone. Most time first."""
    groups: dict[str, StatementGroup] = {}
    for st in statements:
        key = query_fingerprint(st.query) or f"queryid:{st.queryid}"
        group = groups.get(key)
        if group is None:
            group = groups[key] = StatementGroup(fingerprint=key, query=st.query)
        group.queryids.append(st.queryid)
        group.calls += st.calls
        group.total_exec_time += st.total_exec_time
        group.rows += st.rows
    return sorted(groups.values(), key=lambda g: (-g.total_exec_time, g.fingerprint))


def seq_scan_tables(
    tables: Iterable[TableScans],
    *,
    min_rows: int = MIN_TABLE_ROWS,
    max_index_share: float = MAX_SEQ_SCAN_INDEX_SHARE,
) -> list[TableScans]:
    """Tables of at least ``min_rows`` rows whose scans are under 95 % index scans."""
    flagged = [
        t
        for t in tables
        if t.n_live_tup >= min_rows
        and t.seq_scan + (t.idx_scan or 0) > 0
        and t.index_share < max_index_share
    ]
    return sorted(flagged, key=lambda t: (-t.seq_tup_read, -t.seq_scan, t.schema, t.name))


# --- index suggestions --------------------------------------------------------------------


def distinct_values(n_distinct: float | None, reltuples: float) -> float | None:
    """pg_stats.n_distinct as a count: negative values are a fraction of the rows."""
    if n_distinct is None or n_distinct == 0:
        return None
    if n_distinct > 0:
        return n_distinct
    return -n_distinct * reltuples if reltuples > 0 else None


def order_by_selectivity(columns: Sequence[str], table: TableCatalog) -> tuple[str, ...]:
    """Most selective (most distinct values) first; columns without statistics keep their
    order after those with. Stops once the estimated matching rows are few."""
    known = []
    unknown = []
    for position, column in enumerate(columns):
        distinct = distinct_values(table.columns.get(column), table.reltuples)
        if distinct is None:
            unknown.append((position, column))
        else:
            known.append((-distinct, position, column, distinct))
    known.sort()
    chosen: list[str] = []
    rows = table.reltuples if table.reltuples > 0 else None
    for _, _, column, distinct in known:
        chosen.append(column)
        if rows is not None:
            rows /= distinct
            if rows <= ENOUGH_ROWS:
                return tuple(chosen[:MAX_INDEX_COLUMNS])
    chosen.extend(column for _, column in unknown)
    return tuple(chosen[:MAX_INDEX_COLUMNS])


def matching_rows(columns: Sequence[str], table: TableCatalog) -> float | None:
    """Rows an equality match on all the columns is estimated to return (assuming the
    columns independent); None when a column or the table size has no statistics."""
    if table.reltuples <= 0:
        return None
    rows = table.reltuples
    for column in columns:
        distinct = distinct_values(table.columns.get(column), table.reltuples)
        if distinct is None:
            return None
        rows /= distinct
    return rows


def is_covered(columns: Sequence[str], indexes: Iterable[Sequence[str | None]]) -> bool:
    """An index covers equality columns when its leading key columns are exactly those
    columns, in any order (an index on (a, b) serves WHERE b = ? AND a = ?)."""
    wanted = set(columns)
    n = len(wanted)
    return any(len(index) >= n and set(index[:n]) == wanted for index in indexes)


def resolve_table(ref: TableRef, catalog: Iterable[TableCatalog]) -> TableCatalog | None:
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


def suggest_indexes(
    statements: Iterable[Statement],
    catalog: Iterable[TableCatalog],
    *,
    min_rows: int = MIN_TABLE_ROWS,
) -> list[Suggestion]:
    """One suggestion per (table, columns) for single-table statements filtering by
    equality or IN, unless an index already covers them. Statements sharing a suggestion
    are merged; the one that used the most time represents them."""
    catalog = list(catalog)
    merged: dict[tuple[str, str, tuple[str, ...]], list[Statement]] = {}
    for st in statements:
        predicates = equality_predicates(st.query)
        if predicates is None:
            continue
        table = resolve_table(predicates.table, catalog)
        if table is None:
            continue
        if 0 <= table.reltuples < min_rows:
            continue  # small (a never-analysed table has reltuples -1: unknown, kept)
        usable = [c for c in predicates.columns if c in table.columns]
        if not usable:
            continue
        columns = order_by_selectivity(usable, table)
        if is_covered(columns, table.indexes):
            continue
        rows = matching_rows(columns, table)
        if rows is not None and rows > MAX_MATCHING_SHARE * table.reltuples:
            continue  # not selective enough to be used
        merged.setdefault((table.schema, table.name, columns), []).append(st)
    by_name = {(t.schema, t.name): t for t in catalog}
    suggestions = []
    for (schema, name, columns), sts in merged.items():
        lead = max(sts, key=lambda s: (s.total_exec_time, s.queryid))
        rows = matching_rows(columns, by_name[(schema, name)])
        estimate = (
            f" About {max(rows, 1):,.0f} of {by_name[(schema, name)].reltuples:,.0f} rows "
            "match a value."
            if rows is not None
            else ""
        )
        suggestions.append(
            Suggestion(
                schema=schema,
                table=name,
                columns=columns,
                queryid=lead.queryid,
                query=lead.query,
                mean_exec_time=lead.mean_exec_time,
                calls=lead.calls,
                queryids=tuple(sorted(s.queryid for s in sts)),
                why=(
                    f"{len(sts)} statement(s) filter {name} by "
                    f"{', '.join(columns)} with = or IN and no index starts with "
                    + ("that column" if len(columns) == 1 else "those columns")
                    + "."
                    + estimate
                ),
            )
        )
    return sorted(suggestions, key=lambda s: (-s.mean_exec_time * s.calls, s.key))


# --- the statements that apply a suggestion ---------------------------------------------


def index_name(table: str, columns: Sequence[str]) -> str:
    """``<table>_<col>_<col>_idx``, shortened with a hash to PostgreSQL's 63 bytes."""
    name = f"{table}_{'_'.join(columns)}_idx"
    if len(name.encode("utf-8")) <= POSTGRES_MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    room = POSTGRES_MAX_IDENTIFIER - len(digest) - len("__idx")
    head = name.encode("utf-8")[:room].decode("utf-8", "ignore")
    return f"{head}_{digest}_idx"


def create_index_sql(schema: str, table: str, columns: Sequence[str], name: str) -> sql.Composed:
    return sql.SQL("CREATE INDEX CONCURRENTLY {name} ON {table} ({columns})").format(
        name=sql.Identifier(name),
        table=sql.Identifier(schema, table),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )


def drop_index_sql(schema: str, name: str) -> sql.Composed:
    return sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {name}").format(
        name=sql.Identifier(schema, name)
    )
