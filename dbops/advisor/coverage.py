"""Whether an existing index already serves a candidate: only when the planner could use
it for the candidate's conditions, judged by its access method and operator classes.

- btree: the equality keys among its leading columns in any order, then range and
  ORDER BY keys in order; LIKE 'abc%' only with a pattern operator class or C collation.
- hash: equality (and IN, through a bitmap scan) on its one column, nothing else.
- GiST, SP-GiST, BRIN, GIN: a condition whose operator the key's operator family offers
  (pg_amop), never an ORDER BY; IS NULL only where the key can search nulls. So a GIN
  jsonb_ops index does not serve ``metadata = '{}'``, and a BRIN index no ORDER BY.
"""

from __future__ import annotations

from dbops.advisor.model import Candidate, ExistingIndex, IndexKey, Key, TableInfo, Term

EQUALITY_ROLES = frozenset({"=", "in", "is_null", "not_null", "bool", "join"})
PATTERN_FAMILIES = frozenset({"text_pattern_ops", "varchar_pattern_ops", "bpchar_pattern_ops"})
C_COLLATIONS = frozenset({"C", "POSIX"})
# pg_trgm's operator families offer = since pg_trgm 1.6, but are built for patterns: the
# planner does use them for equality, at a cost close to a btree's (see the PgHero table).
_RANGE_NEEDS = {"range": {"<", ">"}, "between": {"<=", ">="}}


def collation_is_c(collation: str | None, table: TableInfo) -> bool:
    name = collation or ""
    if name in ("", "default"):
        name = table.database_collation
    return name in C_COLLATIONS


def key_serves(index: ExistingIndex, ikey: IndexKey, key: Key, table: TableInfo) -> bool:
    """Whether one index key can search the condition one candidate key stands for."""
    if ikey.term is None or ikey.term != key.term:
        return False
    ops = ikey.operators
    role = key.role
    if role in ("=", "in", "join"):
        return "=" in ops
    if role == "bool":
        return "=" in ops or index.method == "btree"
    if role in ("is_null", "not_null"):
        return ikey.search_nulls
    if role in _RANGE_NEEDS:
        return bool(_RANGE_NEEDS[role] & ops) if role == "range" else _RANGE_NEEDS[role] <= ops
    if role == "like_prefix":
        if "~~" in ops:
            return True  # a trigram index
        if index.method != "btree":
            return False
        return ikey.opfamily in PATTERN_FAMILIES or collation_is_c(ikey.collation, table)
    if role == "like":
        return "~~" in ops
    if role == "ilike":
        return "~~*" in ops
    if role == "sort":
        return index.can_order
    return False


def _btree_covers(index: ExistingIndex, keys: tuple[Key, ...], table: TableInfo) -> bool:
    equality = [k for k in keys if k.role in EQUALITY_ROLES]
    rest = [k for k in keys if k.role not in EQUALITY_ROLES]
    if len(index.keys) < len(keys):
        return False
    # Equality keys first (the candidate puts them first), in any order.
    leading = list(index.keys[: len(equality)])
    for key in equality:
        match = next((ik for ik in leading if key_serves(index, ik, key, table)), None)
        if match is None:
            return False
        leading.remove(match)
    following = index.keys[len(equality) : len(equality) + len(rest)]
    return all(key_serves(index, ik, k, table) for ik, k in zip(following, rest, strict=True))


def _unordered_covers(index: ExistingIndex, keys: tuple[Key, ...], table: TableInfo) -> bool:
    if any(k.role == "sort" for k in keys):
        return False
    if index.method == "hash" and any(k.role not in ("=", "in", "join") for k in keys):
        return False
    return all(any(key_serves(index, ik, k, table) for ik in index.keys) for k in keys)


def index_covers(index: ExistingIndex, candidate: Candidate, table: TableInfo) -> bool:
    if index.predicate is not None:
        # A partial index serves only statements that imply its WHERE.
        wanted = candidate.predicate.label if candidate.predicate else None
        if index.predicate != wanted:
            return False
    keys = candidate.keys
    if candidate.predicate is not None and index.predicate is None:
        # A full index serves a partial candidate only if it also searches the
        # condition the partial index would have kept out.
        extra = Key(term=Term(candidate.predicate.column), role=candidate.predicate.op)
        if all(k.term != extra.term for k in keys):
            keys = (extra, *keys)
    if candidate.method in ("gin", "gist"):
        # A trigram candidate: any index whose key searches the pattern serves it.
        return all(any(key_serves(index, ik, k, table) for ik in index.keys) for k in keys)
    if index.can_order and index.method == "btree":
        return _btree_covers(index, keys, table)
    return _unordered_covers(index, keys, table)


def covering_index(candidate: Candidate, table: TableInfo) -> ExistingIndex | None:
    """The first existing index (primary key first) that serves the candidate."""
    return next((ix for ix in table.indexes if index_covers(ix, candidate, table)), None)
