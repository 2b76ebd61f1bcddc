"""The target's catalog as the advisor models it: built from dbops/sql/advisor_catalog.sql
rows, so the rules themselves never need a connection."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError

from dbops.advisor.model import (
    ColumnStats,
    ExistingIndex,
    IndexKey,
    PartialPredicate,
    TableInfo,
    Term,
)
from dbops.advisor.parse import _predicates, shape_of, term_of


def _strip_casts(node):
    """pg_get_indexdef writes lower((email)::text) for a varchar column: the cast is the
    implicit one, so the key is lower(email)."""
    if isinstance(node, ast.TypeCast):
        return _strip_casts(node.arg)
    if isinstance(node, ast.FuncCall) and node.args:
        return ast.FuncCall(funcname=node.funcname, args=tuple(_strip_casts(a) for a in node.args))
    return node


def expression_term(text: str | None) -> Term | None:
    if not text:
        return None
    try:
        parsed = parse_sql(f"SELECT {text}")
    except ParseError:
        return None
    target = parsed[0].stmt.targetList[0].val
    found = term_of(_strip_casts(target))
    return found[1] if found else None


def partial_label(text: str | None) -> str | None:
    """A partial index's WHERE in the advisor's words (``zip_code IS NULL``), so it can be
    compared with a candidate's; other predicates keep their own text."""
    if text is None:
        return None
    try:
        parsed = parse_sql(f"SELECT 1 WHERE {text}")
    except ParseError:
        return text
    found = _predicates(_strip_casts(parsed[0].stmt.whereClause))
    if isinstance(found, list) and len(found) == 1 and found[0].constant:
        p = found[0]
        return PartialPredicate(column=p.term.column, op=p.op, negated=p.negated).label
    return text


def _index(data: dict) -> ExistingIndex:
    keys = []
    for k in data.get("keys") or []:
        term = Term(k["column"]) if k.get("column") else expression_term(k.get("expression"))
        keys.append(
            IndexKey(
                term=term,
                opfamily=k.get("opfamily") or "",
                operators=frozenset(k.get("operators") or ()),
                search_nulls=bool(k.get("search_nulls")),
                collation=k.get("collation") or "",
            )
        )
    return ExistingIndex(
        name=data["name"],
        method=data["method"],
        keys=tuple(keys),
        can_order=bool(data.get("can_order")),
        predicate=partial_label(data.get("predicate")),
        unique=bool(data.get("unique")),
    )


def table_info(row: dict) -> TableInfo:
    columns = {
        name: ColumnStats(
            type=c.get("type") or "",
            collation=c.get("collation") or "",
            n_distinct=c.get("n_distinct"),
            null_frac=c.get("null_frac"),
            most_common_vals=tuple(c.get("mcv") or ()),
            most_common_freqs=tuple(c.get("mcf") or ()),
        )
        for name, c in (row["columns"] or {}).items()
    }
    return TableInfo(
        schema=row["schema"],
        name=row["name"],
        reltuples=row["reltuples"],
        columns=columns,
        indexes=tuple(_index(ix) for ix in row["indexes"] or []),
        search_path_position=row["search_path_position"],
        database_collation=row.get("database_collation") or "",
    )


def table_names(queries: Iterable[str]) -> list[str]:
    names: set[str] = set()
    for query in queries:
        names.update(ref.name for ref in shape_of(query).tables.values())
    return sorted(names)


def read_catalog(conn: psycopg.Connection, queries: Iterable[str]) -> list[TableInfo]:
    from dbops.stats import fetch

    names = table_names(queries)
    if not names:
        return []
    return [table_info(r) for r in fetch(conn, "advisor_catalog", {"names": names})]
