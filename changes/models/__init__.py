"""The changes app's models: change requests and approvals, the policy data, closure."""

from changes.models.closure import (  # noqa: F401
    CorrectiveAction,
    PostImplementationReview,
)
from changes.models.requests import (  # noqa: F401
    CANCELLABLE_STATES,
    CATEGORY_FOR_RISK,
    EXECUTED_STATES,
    FINISHED_STATES,
    IMPACT_RANK,
    NO_DUE_TIME,
    OPEN_STATES,
    PROCEDURE_EDIT_STATES,
    REVIEW_NAME,
    ROUTINE_MAX_WINDOW_MINUTES,
    Approval,
    ApprovalBase,
    ApprovalGroupObjectPermission,
    ApprovalUserObjectPermission,
    Category,
    ChangeRequest,
    ChangeType,
    Impact,
    Priority,
    RiskLevel,
    State,
    queue_due,
)
from changes.models.rules import (  # noqa: F401
    ApprovalRule,
    RiskFactor,
    RiskRule,
    RiskThreshold,
)
from changes.models.standard import (  # noqa: F401
    StandardTemplate,
    TemplateApproval,
    TemplateApprovalGroupObjectPermission,
    TemplateApprovalUserObjectPermission,
    TemplateStatus,
    TemplateVersion,
)
