from celery import shared_task

from changes.services import approvals_escalate_overdue


@shared_task(name="changes.escalate_overdue_approvals", acks_late=True, ignore_result=True)
def escalate_overdue_approvals() -> int:
    return approvals_escalate_overdue()
