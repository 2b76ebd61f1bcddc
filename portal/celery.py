"""The Celery application. Tasks take ids and call one service each.

Every task's class is ``OutboxTask``: the one place that ties a delivery to its outbox
row (the task id is the row id). The claim has to be a hook inside the task's run
(``before_start``), not a ``task_prerun`` signal: only an ``Ignore`` raised there skips
a duplicate cleanly (acknowledged, nothing recorded as failed).
"""

from __future__ import annotations

import logging
import os

from celery import Celery, Task
from celery.exceptions import Ignore

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

logger = logging.getLogger(__name__)

# A claim outlives the task's hard time limit by this much before the relay may assume
# the worker that held it is gone.
CLAIM_MARGIN_SECONDS = 60


class OutboxTask(Task):
    """Claims the delivery's outbox row before running, marks it done or failed after."""

    def _lease_seconds(self) -> float:
        limit = self.time_limit or self.app.conf.task_time_limit or 60 * 60
        return float(limit) + CLAIM_MARGIN_SECONDS

    def before_start(self, task_id, args, kwargs) -> None:
        from portal.outbox import outbox_claim

        if outbox_claim(task_id=task_id, lease_seconds=self._lease_seconds()) is False:
            logger.info("outbox: %s[%s] already done or running; skipped", self.name, task_id)
            raise Ignore()

    def on_success(self, retval, task_id, args, kwargs) -> None:
        from portal.outbox import outbox_mark_done

        try:
            outbox_mark_done(task_id=task_id)
        except Exception:
            # The row stays claimed; the relay sends it again once the claim runs out.
            logger.exception("outbox: could not mark %s[%s] done", self.name, task_id)

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        from portal.outbox import outbox_mark_failed

        try:
            outbox_mark_failed(task_id=task_id, error=exc)
        except Exception:
            logger.exception("outbox: could not record the failure of %s[%s]", self.name, task_id)

    def on_retry(self, exc, task_id, args, kwargs, einfo) -> None:
        from portal.outbox import outbox_release

        try:
            outbox_release(task_id=task_id)
        except Exception:
            logger.exception("outbox: could not release %s[%s] for retry", self.name, task_id)


app = Celery("portal", task_cls=OutboxTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
