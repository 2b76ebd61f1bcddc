"""Every write of the dbops app, split by what it is about: ``targets``, ``snapshots``
(statistics), ``indexes`` (index proposals and their measured effect). The names below
are the package's interface; import them from here."""

from dbops.services.indexes import (
    index_suggestion_propose,
    index_suggestion_record,
    index_suggestion_verify,
)
from dbops.services.snapshots import stats_snapshot_take, stats_snapshots_take
from dbops.services.targets import (
    database_target_check,
    database_target_create,
    database_target_delete,
    database_target_update,
)

__all__ = [
    "database_target_check",
    "database_target_create",
    "database_target_delete",
    "database_target_update",
    "index_suggestion_propose",
    "index_suggestion_record",
    "index_suggestion_verify",
    "stats_snapshot_take",
    "stats_snapshots_take",
]
