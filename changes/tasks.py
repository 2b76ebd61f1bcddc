from celery import shared_task

from changes import services


@shared_task(name="changes.escalate_overdue_approvals", acks_late=True, ignore_result=True)
def escalate_overdue_approvals() -> int:
    return services.approvals_escalate_overdue()


@shared_task(name="changes.expire_delegations", acks_late=True, ignore_result=True)
def expire_delegations() -> int:
    return services.delegations_expire()
