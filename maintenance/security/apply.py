"""The seed's applySecurityUpdates loop body, for one update:

    backup the component → apply each patch → verify → SUCCESS
    on an error: roll the component back from its backup → ROLLED_BACK (or FAILED)

A failed backup means no patch is tried (FAILED, nothing to roll back). The procedure
calls this once per update, in order, and the next update runs whatever happened here.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import traceback
from pathlib import Path
from typing import Any

from django.utils import timezone

from maintenance.procedures.base import RunContext
from maintenance.security import executors
from maintenance.security.backups import backup_fetch, backup_store
from maintenance.security.executors.base import ExecutorRefused, UpdateFailed, Work
from maintenance.security.inventory import inventory_refresh
from maintenance.security.models import ComponentBackup, ComponentExecutor, UpdateResult
from maintenance.security.services import update_result_record
from maintenance.security.spec import UpdateSpec

logger = logging.getLogger(__name__)
Step = UpdateResult.Step
Status = UpdateResult.Status


class _Outcome:
    def __init__(self, update: UpdateSpec, position: int):
        self.update = update
        self.position = position
        self.status = Status.FAILED
        self.step = Step.PREPARE
        self.before = ""
        self.after = ""
        self.error = ""
        self.backup: ComponentBackup | None = None
        self.details: dict[str, Any] = {}
        self.started = timezone.now()
        self.lines: list[str] = []

    def as_json(self) -> dict[str, Any]:
        u = self.update
        return {
            "position": self.position,
            "component": u.component,
            "package": u.package,
            "ecosystem": u.ecosystem,
            "planned_from": u.current_version,
            "target_version": u.target_version,
            "status": self.status,
            "version_before": self.before,
            "version_after": self.after,
            "failed_step": "" if self.status == Status.SUCCESS else self.step,
            "error": self.error,
            "patches": [p.id for p in u.patches],
            "backup_sha256": self.backup.sha256 if self.backup else "",
            "backup_size_bytes": self.backup.size_bytes if self.backup else None,
            "seconds": round((timezone.now() - self.started).total_seconds(), 2),
            "details": self.details,
        }


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)


def apply_update(update: UpdateSpec, *, position: int, ctx: RunContext) -> dict[str, Any]:
    """Back up, patch and verify one component; roll it back on failure. Records the
    result (UpdateResult, version history) and returns it as JSON for the run."""
    out = _Outcome(update, position)

    def log(text: str) -> None:
        out.lines.append(text)
        ctx.log(text)

    workdir = Path(tempfile.mkdtemp(prefix="portal-security-update-"))
    row = None
    try:
        row = (
            ComponentExecutor.objects.select_related("component")
            .filter(component_id=update.component_id, is_active=True)
            .first()
        )
        if row is None or row.kind != update.executor:
            raise UpdateFailed(
                f"{update.component} no longer has the {update.executor} executor this "
                "update was approved with."
            )
        executor = executors.get(row.kind)
        work = Work(
            log=log,
            run_id=ctx.run_id,
            change_id=ctx.change_id,
            timeout_seconds=int(ctx.params.get("timeout_minutes", 30)) * 60,
            workdir=workdir,
        )
        with executor.open(row.component, row.config, work) as session:
            _run(out, session, row, ctx, workdir, log)
    except (UpdateFailed, ExecutorRefused) as exc:
        out.error = out.error or _message(exc)
        out.status = Status.FAILED
    except Exception as exc:  # an executor's bug fails this component, not the run
        logger.exception("security update %s crashed", update.label)
        out.error = out.error or f"{type(exc).__name__}: {exc}"
        log(traceback.format_exc(limit=3))
        out.status = Status.FAILED
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if row is not None:
        try:
            inventory_refresh(executor=row, run_id=ctx.run_id)
        except Exception:
            logger.exception("inventory refresh after %s failed", update.label)
    result = out.as_json()
    update_result_record(
        run_id=ctx.run_id,
        update=update,
        result=result,
        output="".join(out.lines),
        backup=out.backup,
        started_at=out.started,
    )
    return result


def _run(out: _Outcome, session, row, ctx: RunContext, workdir: Path, log) -> None:
    update = out.update
    before = session.version(update)
    out.before = out.after = before or ""
    if before is None:
        raise UpdateFailed(f"{update.package} is not installed on {update.component}.")
    if before == update.target_version:
        out.status = Status.SUCCESS
        out.details = {"note": "already at the target version; nothing was changed"}
        log(f"{update.package} is already at {before}; nothing to do.\n")
        return
    if before != update.current_version:
        raise UpdateFailed(
            f"{update.package} is at {before}, but the approved update was written for "
            f"{update.current_version}; nothing was changed."
        )
    out.step = Step.BACKUP
    log(f"== Back up {update.component}\n")
    local = session.backup(update)
    out.backup = backup_store(
        local=local, component=row.component, run_id=ctx.run_id, change=_change(ctx)
    )
    log(f"Backup stored: {out.backup.size_bytes} bytes, SHA-256 {out.backup.sha256}\n")
    try:
        out.step = Step.PATCH
        log(f"== Patch {update.package} {before} → {update.target_version}\n")
        applied = [session.apply(update, patch) for patch in (update.patches or [None])]
        out.step = Step.VERIFY
        log("== Verify\n")
        checked = session.verify(update)
        out.after = session.version(update) or ""
        if out.after != update.target_version:
            raise UpdateFailed(f"{update.package} is at {out.after}, not {update.target_version}.")
        out.status = Status.SUCCESS
        out.details = {"patches": applied, "verification": checked}
    except (UpdateFailed, ExecutorRefused) as exc:
        out.error = _message(exc)
        log(f"{out.step.label} failed: {out.error}\n")
        _roll_back(out, session, workdir, log)


def _roll_back(out: _Outcome, session, workdir: Path, log) -> None:
    update = out.update
    failed_step = out.step
    log(f"== Roll back {update.component} from the backup\n")
    try:
        path = backup_fetch(out.backup, workdir)
        restored = session.rollback(update, path, out.backup.metadata)
        out.after = session.version(update) or ""
        if out.after != out.before:
            raise UpdateFailed(
                f"After the rollback {update.package} is at {out.after}, not {out.before}."
            )
        out.status = Status.ROLLED_BACK
        out.details = {"rollback": restored}
        log(f"Rolled back: {update.package} is at {out.after} again.\n")
    except Exception as exc:
        if not isinstance(exc, UpdateFailed | ExecutorRefused):
            logger.exception("rollback of %s crashed", update.label)
        out.error += f"\nRollback failed too: {_message(exc)}"
        out.status = Status.FAILED
        failed_step = Step.ROLLBACK
        try:
            out.after = session.version(update) or ""
        except Exception:
            out.after = ""
    out.step = failed_step


def _change(ctx: RunContext):
    from changes.models import ChangeRequest

    return ChangeRequest.objects.filter(pk=ctx.change_id).first()
