"""The advisor's data: what it reads from a target, what it makes of a statement and what
it suggests. Plain frozen dataclasses, so every rule can be tested without a server."""

from __future__ import annotations

from dataclasses import dataclass, field

# --- pg_stat_statements and table statistics ----------------------------------------------


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


# --- the target's catalog -------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnStats:
    """One column: its type and collation, and what pg_stats says (None when the table
    was never analysed or the portal's user may not read the statistics)."""

    type: str = ""
    collation: str = ""
    n_distinct: float | None = None
    null_frac: float | None = None
    most_common_vals: tuple[str, ...] = ()
    most_common_freqs: tuple[float, ...] = ()

    @property
    def analysed(self) -> bool:
        return self.n_distinct is not None


@dataclass(frozen=True)
class Term:
    """What an index key is built on: a column, or a function of one (lower(email))."""

    column: str
    function: str | None = None

    @property
    def label(self) -> str:
        return f"{self.function}({self.column})" if self.function else self.column


@dataclass(frozen=True)
class IndexKey:
    """One key column of an existing index and what its operator class can search."""

    term: Term | None  # None: an expression the advisor does not model
    opfamily: str = ""
    # Operator names the key's operator family offers for searches on the key's type.
    operators: frozenset[str] = frozenset()
    search_nulls: bool = False
    collation: str = ""


@dataclass(frozen=True)
class ExistingIndex:
    name: str
    method: str  # pg_am.amname
    keys: tuple[IndexKey, ...]
    can_order: bool = False
    predicate: str | None = None  # partial index: its WHERE, normalised by the parser
    unique: bool = False


@dataclass(frozen=True)
class TableInfo:
    """What the target's catalog says about one table."""

    schema: str
    name: str
    reltuples: float
    columns: dict[str, ColumnStats]
    indexes: tuple[ExistingIndex, ...] = ()
    search_path_position: int | None = None
    database_collation: str = ""

    def column(self, name: str) -> ColumnStats | None:
        return self.columns.get(name)


# --- what a statement asks of a table --------------------------------------------------------

EQUALITY_OPS = frozenset({"=", "in", "is_null", "bool"})
RANGE_OPS = frozenset({"range", "between", "like_prefix"})
TRIGRAM_OPS = frozenset({"like", "ilike"})


@dataclass(frozen=True)
class Predicate:
    """One condition of a WHERE (or JOIN ... ON) on one table's column or expression.

    ``op`` is the advisor's class of the condition: ``=``, ``in``, ``range`` (<, <=, >,
    >=), ``between``, ``like_prefix`` (LIKE 'abc%'), ``like``/``ilike`` (a pattern that may
    start with a wildcard), ``is_null``, ``not_null``, ``bool``, ``<>``, ``not_in``.
    ``operator`` is the SQL operator for catalog look-ups; ``constant`` marks conditions
    that stay the same in every call, even after pg_stat_statements replaced the values
    with $n (IS NULL, IS NOT NULL, a boolean column test): those can make a partial index.
    """

    qualifier: str | None
    term: Term
    op: str
    operator: str = "="
    values: int = 1
    literal: object = None
    constant: bool = False
    negated: bool = False  # bool: NOT col / col IS FALSE

    @property
    def indexable(self) -> bool:
        return self.op in EQUALITY_OPS | RANGE_OPS | TRIGRAM_OPS or self.op == "not_null"


@dataclass(frozen=True)
class SortKey:
    qualifier: str | None
    term: Term
    desc: bool = False


@dataclass(frozen=True)
class JoinEquality:
    left: str | None
    left_term: Term
    right: str | None
    right_term: Term


@dataclass
class Shape:
    """A statement as the advisor sees it, or why it cannot (``error``)."""

    kind: str = ""
    tables: dict[str, TableRef] = field(default_factory=dict)
    conjuncts: list[Predicate] = field(default_factory=list)
    or_groups: list[list[list[Predicate]]] = field(default_factory=list)
    joins: list[JoinEquality] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    has_limit: bool = False
    params: int = 0
    error: str = ""


# --- suggestions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One key of a suggested index: its term, why it is there (the predicate's op or
    ``sort``), and its operator class when not the default."""

    term: Term
    role: str
    opclass: str | None = None
    desc: bool = False

    @property
    def label(self) -> str:
        out = self.term.label
        if self.opclass:
            out += f" {self.opclass}"
        if self.desc:
            out += " DESC"
        return out

    def to_json(self) -> dict:
        return {
            "column": self.term.column,
            "function": self.term.function,
            "opclass": self.opclass,
            "desc": self.desc,
            "role": self.role,
        }

    @classmethod
    def from_json(cls, data: dict | str) -> Key:
        if isinstance(data, str):
            return cls(term=Term(column=data), role="=")
        return cls(
            term=Term(column=data["column"], function=data.get("function")),
            role=data.get("role") or "=",
            opclass=data.get("opclass"),
            desc=bool(data.get("desc")),
        )


@dataclass(frozen=True)
class PartialPredicate:
    """The WHERE of a partial index: a constant condition on one column."""

    column: str
    op: str  # is_null | not_null | bool
    negated: bool = False

    @property
    def label(self) -> str:
        if self.op == "is_null":
            return f"{self.column} IS NULL"
        if self.op == "not_null":
            return f"{self.column} IS NOT NULL"
        return f"NOT {self.column}" if self.negated else self.column

    def to_json(self) -> dict:
        return {"column": self.column, "op": self.op, "negated": self.negated}

    @classmethod
    def from_json(cls, data: dict | None) -> PartialPredicate | None:
        if not data:
            return None
        return cls(column=data["column"], op=data["op"], negated=bool(data.get("negated")))


@dataclass(frozen=True)
class Candidate:
    """An index one statement would benefit from, before any proof."""

    schema: str
    table: str
    method: str
    keys: tuple[Key, ...]
    predicate: PartialPredicate | None = None
    shape: str = ""  # which rule produced it: equality, range, sort, like, join, or, ...
    rows: float | None = None  # estimated rows the index leaves to read
    reltuples: float = 0.0
    note: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(k.label for k in self.keys)

    @property
    def identity(self) -> tuple:
        return (self.schema, self.table, self.method, self.columns, self.predicate)

    @property
    def label(self) -> str:
        table = self.table if self.schema == "public" else f"{self.schema}.{self.table}"
        using = "" if self.method == "btree" else f" USING {self.method}"
        where = f" WHERE {self.predicate.label}" if self.predicate else ""
        return f"{table}{using}({', '.join(self.columns)}){where}"


@dataclass(frozen=True)
class Proof:
    """What HypoPG showed: ``proven`` (the planner uses it and the estimated cost drops
    by at least the required share), ``rejected`` (it does not), or ``unverified``."""

    PROVEN = "proven"
    REJECTED = "rejected"
    UNVERIFIED = "unverified"

    status: str
    cost_before: float | None = None
    cost_after: float | None = None
    reason: str = ""

    @property
    def cut_percent(self) -> float | None:
        if self.cost_before and self.cost_after is not None:
            return round(100.0 * (self.cost_before - self.cost_after) / self.cost_before, 1)
        return None


UNVERIFIED = Proof(status=Proof.UNVERIFIED, reason="HypoPG was not consulted.")


@dataclass(frozen=True)
class Verdict:
    """The advisor's answer for one statement: candidates to build (each possibly
    covered by an existing index), or the reason there is none."""

    candidates: tuple[Candidate, ...] = ()
    covered_by: dict = field(default_factory=dict)  # candidate identity -> index name
    reason: str = ""

    @property
    def found(self) -> bool:
        return bool(self.candidates)

    @property
    def missing(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.identity not in self.covered_by)


@dataclass(frozen=True)
class Suggestion:
    """A missing index, with the statements that need it (the costliest represents them)."""

    candidate: Candidate
    queryid: int
    query: str
    mean_exec_time: float
    calls: int
    queryids: tuple[int, ...]
    why: str
    proof: Proof = UNVERIFIED

    @property
    def schema(self) -> str:
        return self.candidate.schema

    @property
    def table(self) -> str:
        return self.candidate.table

    @property
    def columns(self) -> tuple[str, ...]:
        return self.candidate.columns

    @property
    def method(self) -> str:
        return self.candidate.method

    @property
    def key(self) -> str:
        return "|".join(
            [
                self.schema,
                self.table,
                self.method,
                ",".join(self.columns),
                self.candidate.predicate.label if self.candidate.predicate else "",
            ]
        )

    @property
    def label(self) -> str:
        return self.candidate.label

    @property
    def index_parts(self) -> list[str]:
        """The words of the index's name: its columns (lower_email for an expression)."""
        return [
            f"{k.term.function}_{k.term.column}" if k.term.function else k.term.column
            for k in self.candidate.keys
        ]

    @property
    def index_name(self) -> str:
        from dbops.advisor.ddl import index_name

        return index_name(self.table, self.index_parts)
