"""The statements that build, simulate and drop a suggested index. Identifiers only
through psycopg.sql.Identifier; operator classes and functions only from fixed lists."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from psycopg import sql

from dbops.advisor.model import Candidate, Key, PartialPredicate
from dbops.advisor.parse import INDEXABLE_FUNCTIONS

POSTGRES_MAX_IDENTIFIER = 63
METHODS = frozenset({"btree", "hash", "gin", "gist", "brin"})
OPCLASSES = frozenset(
    {
        "gin_trgm_ops",
        "gist_trgm_ops",
        "text_pattern_ops",
        "varchar_pattern_ops",
        "bpchar_pattern_ops",
    }
)


def index_name(table: str, columns: Sequence[str]) -> str:
    """``<table>_<col>_<col>_idx``, shortened with a hash to PostgreSQL's 63 bytes."""
    name = f"{table}_{'_'.join(columns)}_idx"
    if len(name.encode("utf-8")) <= POSTGRES_MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    room = POSTGRES_MAX_IDENTIFIER - len(digest) - len("__idx")
    head = name.encode("utf-8")[:room].decode("utf-8", "ignore")
    return f"{head}_{digest}_idx"


def _key_sql(key: Key) -> sql.Composable:
    column = sql.Identifier(key.term.column)
    if key.term.function:
        if key.term.function not in INDEXABLE_FUNCTIONS:
            raise ValueError(f"Not an indexable function: {key.term.function!r}")
        # An expression key needs its own parentheses in CREATE INDEX.
        out: sql.Composable = sql.SQL("({}({}))").format(sql.SQL(key.term.function), column)
    else:
        out = column
    if key.opclass:
        if key.opclass not in OPCLASSES:
            raise ValueError(f"Not a known operator class: {key.opclass!r}")
        out = sql.SQL("{} {}").format(out, sql.SQL(key.opclass))
    if key.desc:
        out = sql.SQL("{} DESC").format(out)
    return out


def predicate_sql(predicate: PartialPredicate) -> sql.Composable:
    column = sql.Identifier(predicate.column)
    if predicate.op == "is_null":
        return sql.SQL("{} IS NULL").format(column)
    if predicate.op == "not_null":
        return sql.SQL("{} IS NOT NULL").format(column)
    if predicate.op == "bool":
        return sql.SQL("NOT {}").format(column) if predicate.negated else column
    raise ValueError(f"Not a partial-index condition: {predicate.op!r}")


def index_definition(
    *,
    schema: str,
    table: str,
    keys: Sequence[Key],
    method: str = "btree",
    predicate: PartialPredicate | None = None,
    name: str | None = None,
    concurrently: bool = True,
) -> sql.Composed:
    if method not in METHODS:
        raise ValueError(f"Not an index access method: {method!r}")
    parts = [sql.SQL("CREATE INDEX")]
    if concurrently:
        parts.append(sql.SQL("CONCURRENTLY"))
    if name:
        parts.append(sql.Identifier(name))
    parts.append(sql.SQL("ON {}").format(sql.Identifier(schema, table)))
    if method != "btree":
        parts.append(sql.SQL("USING {}").format(sql.SQL(method)))
    parts.append(sql.SQL("({})").format(sql.SQL(", ").join(_key_sql(k) for k in keys)))
    if predicate is not None:
        parts.append(sql.SQL("WHERE {}").format(predicate_sql(predicate)))
    return sql.SQL(" ").join(parts)


def candidate_sql(candidate: Candidate, *, name: str | None = None, concurrently=True):
    return index_definition(
        schema=candidate.schema,
        table=candidate.table,
        keys=candidate.keys,
        method=candidate.method,
        predicate=candidate.predicate,
        name=name,
        concurrently=concurrently,
    )


def create_index_sql(
    schema: str,
    table: str,
    columns: Sequence,
    name: str,
    *,
    method: str = "btree",
    predicate: dict | PartialPredicate | None = None,
) -> sql.Composed:
    """CREATE INDEX CONCURRENTLY for stored suggestions: ``columns`` are plain column
    names or the stored key dicts (``Key.to_json``)."""
    if isinstance(predicate, dict):
        predicate = PartialPredicate.from_json(predicate)
    return index_definition(
        schema=schema,
        table=table,
        keys=[Key.from_json(c) for c in columns],
        method=method,
        predicate=predicate,
        name=name,
    )


def drop_index_sql(schema: str, name: str) -> sql.Composed:
    return sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {name}").format(
        name=sql.Identifier(schema, name)
    )
