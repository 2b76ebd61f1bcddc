"""Statements grouped by pattern, and tables read mostly by sequential scans."""

from __future__ import annotations

from collections.abc import Iterable

from pglast.parser import ParseError, fingerprint

from dbops.advisor.model import Statement, StatementGroup, TableScans

# A table read by sequential scans for more than this share of its scans is flagged.
MAX_SEQ_SCAN_INDEX_SHARE = 0.95
MIN_TABLE_ROWS = 10_000


def query_fingerprint(query: str) -> str | None:
    try:
        return fingerprint(query)
    except ParseError:
        return None


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
