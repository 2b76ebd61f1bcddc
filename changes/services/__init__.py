"""Every write to changes and approvals, split by what it is about.

- ``drafts``: create, edit, copy, cancel a change request;
- ``review``: submit (risk and routing), reopen the review;
- ``decisions``: the approval engine shared with emergency windows;
- ``approvals``: deciding and delegating a change's approvals, escalation;
- ``lifecycle``: scheduled → started → implemented → verified → completed or failed;
- ``closure``: the post-implementation review, corrective actions, closing;
- ``templates``: the standard change catalog and changes filed from it.

The names below are the package's interface; import them from here.
"""

from changes.services.approvals import (
    approval_decide,
    approval_delegate,
    approval_delegation_revoke,
    approvals_escalate_overdue,
    delegations_expire,
)
from changes.services.closure import change_close, corrective_action_record, review_submit
from changes.services.drafts import (
    EDITABLE_FIELDS,
    change_cancel,
    change_copy,
    change_create,
    change_procedure_profile_set,
    change_update,
)
from changes.services.lifecycle import (
    change_complete,
    change_fail,
    change_implement,
    change_procedures_succeeded,
    change_schedule,
    change_start,
    change_unschedule,
    change_verify,
)
from changes.services.review import change_reopen_review, change_submit
from changes.services.templates import (
    change_file_from_template,
    template_approval_decide,
    template_propose,
    template_retire,
)

__all__ = [
    "EDITABLE_FIELDS",
    "approval_decide",
    "approval_delegate",
    "approval_delegation_revoke",
    "approvals_escalate_overdue",
    "change_cancel",
    "change_close",
    "change_complete",
    "change_copy",
    "change_create",
    "change_fail",
    "change_file_from_template",
    "change_implement",
    "change_procedure_profile_set",
    "change_procedures_succeeded",
    "change_reopen_review",
    "change_schedule",
    "change_start",
    "change_submit",
    "change_unschedule",
    "change_update",
    "change_verify",
    "corrective_action_record",
    "delegations_expire",
    "review_submit",
    "template_approval_decide",
    "template_propose",
    "template_retire",
]
