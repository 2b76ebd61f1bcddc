"""Every write of the maintenance app, split by sub-domain.

- ``windows``: routine generation, emergency windows and their approvals, subscriptions;
- ``slots``: placing an approved change in a window and taking it out;
- ``procedures``: the procedures a change will run;
- ``notices``: pre-start notices;
- ``execution``: starting and advancing a window's execution, its cutoff;
- ``runs``: claiming, finishing, reaping, retrying and abandoning procedure runs;
- ``reports``: the stored PDF report.

The names below are the package's interface; import them from here.
"""

from maintenance.services.execution import (
    cutoffs_enforce,
    execution_advance,
    start_due_windows,
    window_start,
)
from maintenance.services.notices import window_notices_send
from maintenance.services.procedures import change_procedure_add, change_procedure_remove
from maintenance.services.reports import execution_report_generate
from maintenance.services.runs import (
    run_abandon,
    run_claim,
    run_finish,
    run_retry,
    run_wait_for_operator,
    runs_reap_stale,
    runs_stop_for_worker,
    step_complete,
)
from maintenance.services.slots import slot_create, slot_remove
from maintenance.services.windows import (
    emergency_window_request,
    window_approval_decide,
    window_approval_delegate,
    window_approval_delegation_revoke,
    window_stakeholders_set,
    window_subscribe,
    windows_generate,
)

__all__ = [
    "change_procedure_add",
    "change_procedure_remove",
    "cutoffs_enforce",
    "emergency_window_request",
    "execution_advance",
    "execution_report_generate",
    "run_abandon",
    "run_claim",
    "run_finish",
    "run_retry",
    "run_wait_for_operator",
    "runs_reap_stale",
    "runs_stop_for_worker",
    "slot_create",
    "slot_remove",
    "start_due_windows",
    "step_complete",
    "window_approval_decide",
    "window_approval_delegate",
    "window_approval_delegation_revoke",
    "window_notices_send",
    "window_stakeholders_set",
    "window_start",
    "window_subscribe",
    "windows_generate",
]
