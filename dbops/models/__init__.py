"""The dbops app's models: targets and statistics (targets.py), configuration change
sets (dbops.configuration.models) and tuning runs (dbops.tuning.models)."""

from dbops.configuration.models import (  # noqa: F401
    ConfigurationChange,
    ConfigurationChangeSet,
    ConfigurationRule,
)
from dbops.models.targets import (  # noqa: F401
    DatabaseTarget,
    IndexSuggestion,
    QueryStatsSnapshot,
    SslMode,
    StatementStat,
    TableStat,
)
from dbops.tuning.models import (  # noqa: F401
    TuningAdjustment,
    TuningSample,
    TuningSession,
)
