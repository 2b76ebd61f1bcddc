"""The index advisor: what index a statement needs, whether one already serves it, and
proof from HypoPG that the planner would use it (issue 15).

- ``parse``: a statement's shape from pglast; ``rules``: the candidate index;
  ``coverage``: whether an existing index serves it; ``hypo``: the HypoPG proof;
  ``advise``: statements to suggestions; ``explain``: the query page's plans;
  ``verify``: after the build, whether the plan uses the index.
"""

from dbops.advisor.advise import Advice, advise_on, suggest
from dbops.advisor.ddl import create_index_sql, drop_index_sql, index_name
from dbops.advisor.model import (
    Candidate,
    Key,
    PartialPredicate,
    Proof,
    Statement,
    StatementGroup,
    Suggestion,
    TableInfo,
    TableRef,
    TableScans,
    Verdict,
)
from dbops.advisor.rules import Settings, analyse, resolve_table, settings_from_django
from dbops.advisor.statements import group_statements, query_fingerprint, seq_scan_tables

__all__ = [
    "Advice",
    "Candidate",
    "Key",
    "PartialPredicate",
    "Proof",
    "Settings",
    "Statement",
    "StatementGroup",
    "Suggestion",
    "TableInfo",
    "TableRef",
    "TableScans",
    "Verdict",
    "advise_on",
    "analyse",
    "create_index_sql",
    "drop_index_sql",
    "group_statements",
    "index_name",
    "query_fingerprint",
    "resolve_table",
    "seq_scan_tables",
    "settings_from_django",
    "suggest",
]
