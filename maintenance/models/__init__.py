"""The maintenance app's models: windows (windows.py) and execution (execution.py)."""

from maintenance.models.execution import (  # noqa: F401
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceIssue,
    ProcedureRun,
    RunStatus,
    ScheduledChange,
    StepRun,
)

# Referenced by the initial migration (the feed token's default).
from maintenance.models.windows import (  # noqa: F401
    BlackoutPeriod,
    CalendarFeedToken,
    Cutoff,
    MaintenancePolicy,
    MaintenanceWindow,
    WindowApproval,
    WindowApprovalGroupObjectPermission,
    WindowApprovalUserObjectPermission,
    WindowNotice,
    WindowType,
    _new_token,
)

# Security updates live in their own package; importing it makes its models this app's.
from maintenance.security import models as _security_models  # noqa: F401
