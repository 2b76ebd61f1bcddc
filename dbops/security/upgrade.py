"""UPGRADE's backup and rollback: the extension executor's pg_dump taken before
ALTER EXTENSION … UPDATE, stored as evidence like a security update's, and restored
(old version and every table checked against the backup) when the update fails.

The UPGRADE run already holds the per-target advisory lock, so these take none.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from dbops.procedures.common import target_of
from dbops.security import backup
from maintenance.procedures.base import RunContext, StepFailed, StepSpec
from maintenance.security.backups import backup_fetch, backup_store
from maintenance.security.executors.base import UpdateFailed, Work
from maintenance.security.models import ComponentBackup

TIMEOUT_SECONDS = 30 * 60


def _work(ctx: RunContext) -> Work:
    if "backup_workdir" not in ctx.state:
        ctx.state["backup_workdir"] = tempfile.mkdtemp(prefix="portal-upgrade-")
    return Work(
        log=ctx.log,
        run_id=ctx.run_id,
        change_id=ctx.change_id,
        timeout_seconds=TIMEOUT_SECONDS,
        workdir=Path(ctx.state["backup_workdir"]),
    )


def backup_step(ctx: RunContext) -> dict[str, Any]:
    from changes.models import ChangeRequest

    target = target_of(ctx)
    try:
        local = backup.take(
            target=target, extension=ctx.params["extension"], schemas=[], work=_work(ctx)
        )
    except UpdateFailed as exc:
        raise StepFailed(f"The backup failed, so nothing was updated: {exc.message}") from None
    stored = backup_store(
        local=local,
        component=target.component,
        run_id=ctx.run_id,
        change=ChangeRequest.objects.filter(pk=ctx.change_id).first(),
    )
    ctx.state["backup"] = {
        "id": stored.pk,
        "sha256": stored.sha256,
        "size_bytes": stored.size_bytes,
    }
    return dict(ctx.state["backup"])


def rollback_steps(ctx: RunContext) -> list[StepSpec]:
    if "backup" not in ctx.state:
        return []  # the failure came before the backup: nothing was changed

    def restore(c: RunContext) -> dict[str, Any]:
        stored = ComponentBackup.objects.get(pk=c.state["backup"]["id"])
        work = _work(c)
        try:
            path = backup_fetch(stored, work.workdir)
            return backup.restore(
                target=target_of(c), path=path, metadata=stored.metadata, work=work
            )
        except UpdateFailed as exc:
            raise StepFailed(exc.message) from None

    return [StepSpec("Restore the pg_dump backup and verify the old version", restore)]


def cleanup(ctx: RunContext) -> None:
    workdir = ctx.state.pop("backup_workdir", None)
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
