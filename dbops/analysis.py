"""Compatibility names for code written before the advisor package (dbops/advisor/).

New code imports from ``dbops.advisor``; this module goes once nothing uses these."""

from dbops.advisor.ddl import create_index_sql, drop_index_sql, index_name
from dbops.advisor.model import Statement, StatementGroup, Suggestion, TableRef, TableScans
from dbops.advisor.statements import MIN_TABLE_ROWS, group_statements, seq_scan_tables

__all__ = [
    "MIN_TABLE_ROWS",
    "Statement",
    "StatementGroup",
    "Suggestion",
    "TableRef",
    "TableScans",
    "create_index_sql",
    "drop_index_sql",
    "group_statements",
    "index_name",
    "seq_scan_tables",
]
