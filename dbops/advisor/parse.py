"""A statement's shape from PostgreSQL's own parser (pglast), never from regular
expressions: the tables it reads, the conditions on their columns, its joins and its
ORDER BY."""

from __future__ import annotations

import functools

from pglast import ast, parse_sql
from pglast.enums import (
    A_Expr_Kind,
    BoolExprType,
    BoolTestType,
    JoinType,
    NullTestType,
    SetOperation,
    SortByDir,
)
from pglast.parser import ParseError
from pglast.visitors import Visitor

from dbops.advisor.model import JoinEquality, Predicate, Shape, SortKey, TableRef, Term

MAX_STATEMENT_CHARS = 100_000
# Functions an expression index is suggested for: immutable, and common in lookups.
INDEXABLE_FUNCTIONS = frozenset({"lower", "upper"})
_RANGE_OPERATORS = frozenset({"<", "<=", ">", ">="})


def _names(nodes) -> list[str]:
    return [n.sval for n in nodes or () if isinstance(n, ast.String)]


class _Finder(Visitor):
    def __init__(self, kinds):
        super().__init__()
        self.kinds = kinds
        self.found: list = []

    def visit(self, ancestors, node):
        if isinstance(node, self.kinds):
            self.found.append(node)


def find(node, *kinds) -> list:
    finder = _Finder(kinds)
    finder(node)
    return finder.found


def _is_value(node) -> bool:
    """A parameter, a constant or an expression of them (now(), $1::int, 'a' || $2):
    what a condition compares a column with. No column, no sub-select."""
    if node is None:
        return False
    if isinstance(node, ast.ParamRef | ast.A_Const):
        return True
    return not find(node, ast.ColumnRef, ast.SubLink)


def _literal(node):
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and not node.isnull:
        val = node.val
        for attr in ("sval", "ival", "fval", "boolval"):
            if hasattr(val, attr):
                return getattr(val, attr)
    return None


def _column(node) -> tuple[str | None, str] | None:
    if not isinstance(node, ast.ColumnRef):
        return None
    names = _names(node.fields)
    if len(names) != len(node.fields):
        return None  # table.*
    qualifier = ".".join(names[:-1]) or None
    return qualifier, names[-1]


def term_of(node) -> tuple[str | None, Term] | None:
    """A column, or lower()/upper() of one, as an index key could hold it."""
    col = _column(node)
    if col is not None:
        return col[0], Term(column=col[1])
    if isinstance(node, ast.FuncCall) and len(node.args or ()) == 1:
        name = _names(node.funcname)
        if name and name[-1] in INDEXABLE_FUNCTIONS and name[:-1] in ([], ["pg_catalog"]):
            col = _column(node.args[0])
            if col is not None and not node.agg_star and not node.over:
                return col[0], Term(column=col[1], function=name[-1])
    return None


def _like_op(pattern, kind: str) -> str:
    """LIKE 'abc%' can use a btree (a range over the prefix); a pattern starting with a
    wildcard, or a parameter, needs a trigram index. ILIKE always does."""
    if kind == "ilike" or not isinstance(pattern, str):
        return kind
    if pattern and pattern[0] not in "%_":
        return "like_prefix"
    return kind


def _predicates(expr) -> list[Predicate] | JoinEquality | None:
    """The predicate(s) one conjunct states, a join equality, or None."""
    if isinstance(expr, ast.NullTest):
        found = term_of(expr.arg)
        if found is None:
            return None
        op = "not_null" if expr.nulltesttype == NullTestType.IS_NOT_NULL else "is_null"
        return [Predicate(found[0], found[1], op, operator="IS NULL", constant=True)]
    if isinstance(expr, ast.BooleanTest):
        col = _column(expr.arg)
        if col is None or expr.booltesttype not in (BoolTestType.IS_TRUE, BoolTestType.IS_FALSE):
            return None
        negated = expr.booltesttype == BoolTestType.IS_FALSE
        return [Predicate(col[0], Term(col[1]), "bool", constant=True, negated=negated)]
    if isinstance(expr, ast.ColumnRef):
        col = _column(expr)
        return [Predicate(col[0], Term(col[1]), "bool", constant=True)] if col else None
    if isinstance(expr, ast.BoolExpr) and expr.boolop == BoolExprType.NOT_EXPR:
        col = _column(expr.args[0])
        if col is None:
            return None
        return [Predicate(col[0], Term(col[1]), "bool", constant=True, negated=True)]
    if not isinstance(expr, ast.A_Expr):
        return None
    name = _names(expr.name)
    operator = name[-1] if name else ""
    kind = expr.kind
    if kind == A_Expr_Kind.AEXPR_OP:
        left, right = term_of(expr.lexpr), term_of(expr.rexpr)
        if left and right and operator == "=":
            return JoinEquality(left[0], left[1], right[0], right[1])
        if left and _is_value(expr.rexpr):
            found, value = left, expr.rexpr
        elif right and _is_value(expr.lexpr):
            found, value = right, expr.lexpr
            operator = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(operator, operator)
        else:
            return None
        literal = _literal(value)
        if operator == "=":
            if isinstance(literal, bool):
                return [Predicate(found[0], found[1], "bool", constant=True, negated=not literal)]
            return [Predicate(found[0], found[1], "=", literal=literal)]
        if operator in _RANGE_OPERATORS:
            return [Predicate(found[0], found[1], "range", operator=operator, literal=literal)]
        if operator in ("<>", "!="):
            return [Predicate(found[0], found[1], "<>", operator="<>")]
        return [Predicate(found[0], found[1], "other", operator=operator)]
    found = term_of(expr.lexpr)
    if found is None:
        return None
    if kind == A_Expr_Kind.AEXPR_IN:
        values = expr.rexpr if isinstance(expr.rexpr, tuple | list) else ()
        if not values or not all(_is_value(v) for v in values):
            return None
        op = "in" if operator == "=" else "not_in"
        return [Predicate(found[0], found[1], op, operator="=", values=len(values))]
    if kind == A_Expr_Kind.AEXPR_OP_ANY and operator == "=" and _is_value(expr.rexpr):
        return [Predicate(found[0], found[1], "in", values=3)]
    if kind == A_Expr_Kind.AEXPR_BETWEEN:
        values = expr.rexpr if isinstance(expr.rexpr, tuple | list) else ()
        if len(values) == 2 and all(_is_value(v) for v in values):
            return [Predicate(found[0], found[1], "between", operator=">=")]
        return None
    if kind in (A_Expr_Kind.AEXPR_LIKE, A_Expr_Kind.AEXPR_ILIKE) and _is_value(expr.rexpr):
        if operator not in ("~~", "~~*"):
            return None  # NOT LIKE: no index helps
        literal = _literal(expr.rexpr)
        op = _like_op(literal, "like" if operator == "~~" else "ilike")
        return [Predicate(found[0], found[1], op, operator=operator, literal=literal)]
    return None


def _conjuncts(where) -> list:
    if where is None:
        return []
    if isinstance(where, ast.BoolExpr) and where.boolop == BoolExprType.AND_EXPR:
        out: list = []
        for arg in where.args:
            out.extend(_conjuncts(arg))
        return out
    return [where]


def _or_group(expr) -> list[list[Predicate]] | Predicate | None:
    """An OR's branches as lists of predicates; several equalities on one column become
    one IN. None when a branch has no condition an index can serve."""
    branches: list[list[Predicate]] = []
    for arg in expr.args:
        preds: list[Predicate] = []
        for conjunct in _conjuncts(arg):
            found = _predicates(conjunct)
            if isinstance(found, list):
                preds.extend(p for p in found if p.indexable and p.op != "not_null")
        if not preds:
            return None
        branches.append(preds)
    singles = [b[0] for b in branches if len(b) == 1]
    if len(singles) == len(branches) and all(p.op in ("=", "in") for p in singles):
        first = singles[0]
        if all((p.qualifier, p.term) == (first.qualifier, first.term) for p in singles):
            return Predicate(
                first.qualifier, first.term, "in", values=sum(p.values for p in singles)
            )
    return branches


def _add_where(shape: Shape, where) -> None:
    for conjunct in _conjuncts(where):
        if isinstance(conjunct, ast.BoolExpr) and conjunct.boolop == BoolExprType.OR_EXPR:
            group = _or_group(conjunct)
            if isinstance(group, Predicate):
                shape.conjuncts.append(group)
            elif group:
                shape.or_groups.append(group)
            continue
        found = _predicates(conjunct)
        if isinstance(found, JoinEquality):
            shape.joins.append(found)
        elif found:
            shape.conjuncts.extend(found)


def _add_table(shape: Shape, node, quals: list) -> bool:
    """Records the tables of a FROM item; False for an item the advisor cannot read."""
    if isinstance(node, ast.RangeVar):
        alias = node.alias.aliasname if node.alias else node.relname
        shape.tables[alias] = TableRef(schema=node.schemaname or None, name=node.relname)
        return True
    if isinstance(node, ast.JoinExpr):
        if node.jointype not in (JoinType.JOIN_INNER, JoinType.JOIN_LEFT, JoinType.JOIN_RIGHT):
            return False
        ok = _add_table(shape, node.larg, quals) and _add_table(shape, node.rarg, quals)
        if node.quals is not None:
            quals.append(node.quals)
        return ok
    return False


def _from(shape: Shape, items) -> bool:
    quals: list = []
    readable = [_add_table(shape, item, quals) for item in items or ()]
    for q in quals:
        _add_where(shape, q)
    return any(readable)


def _sort(shape: Shape, clause) -> None:
    """The leading ORDER BY keys that are columns (or indexable expressions); a key the
    advisor cannot index ends the list, since an index serves only a prefix."""
    for item in clause or ():
        if not isinstance(item, ast.SortBy):
            break
        found = term_of(item.node)
        if found is None:
            break
        desc = item.sortby_dir == SortByDir.SORTBY_DESC
        shape.sort.append(SortKey(found[0], found[1], desc=desc))


def _max_param(stmt) -> int:
    return max((p.number for p in find(stmt, ast.ParamRef)), default=0)


@functools.lru_cache(maxsize=4096)
def shape_of(query: str | None) -> Shape:
    """The advisor's view of one statement; ``error`` says why there is none."""
    if not query or not query.strip():
        return Shape(error="Empty statement")
    if len(query) > MAX_STATEMENT_CHARS:
        return Shape(error="Statement too large to analyse")
    try:
        parsed = parse_sql(query)
    except ParseError:
        return Shape(error="Parse error")
    if len(parsed) != 1:
        return Shape(error="Several statements")
    stmt = parsed[0].stmt
    shape = Shape(params=_max_param(stmt))
    if isinstance(stmt, ast.SelectStmt):
        shape.kind = "select"
        if stmt.op is not None and stmt.op != SetOperation.SETOP_NONE:
            shape.error = "Set operation (UNION, INTERSECT, EXCEPT): analyse each part"
            return shape
        if not stmt.fromClause:
            shape.error = "No table"
            return shape
        if not _from(shape, stmt.fromClause):
            shape.error = "Reads only sub-selects or functions"
            return shape
        _add_where(shape, stmt.whereClause)
        _sort(shape, stmt.sortClause)
        shape.has_limit = stmt.limitCount is not None
    elif isinstance(stmt, ast.UpdateStmt | ast.DeleteStmt):
        shape.kind = "update" if isinstance(stmt, ast.UpdateStmt) else "delete"
        _add_table(shape, stmt.relation, [])
        _from(shape, stmt.fromClause if shape.kind == "update" else stmt.usingClause)
        _add_where(shape, stmt.whereClause)
    elif isinstance(stmt, ast.InsertStmt):
        shape.kind = "insert"
        shape.error = "INSERT statement: an index only slows it down"
    elif isinstance(stmt, ast.VariableSetStmt | ast.VariableShowStmt):
        shape.kind = "utility"
        shape.error = "SET statement"
    else:
        shape.kind = "utility"
        shape.error = "Not a query an index serves"
    return shape
