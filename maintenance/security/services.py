"""Writes for security updates: registering a component's executor, recording each
component's result, and proposing a security update from the compliance page."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from changes.access import filing_tenants
from changes.models import ChangeRequest, ChangeType, Priority
from maintenance.scheduling import next_routine_start
from maintenance.security import executors, selectors, versions
from maintenance.security.executors.base import ExecutorRefused, UpdateFailed
from maintenance.security.models import (
    ComponentBackup,
    ComponentExecutor,
    Exposure,
    UpdateResult,
)
from maintenance.security.spec import UpdateSpec
from portal.audit import audit_record
from portal.errors import Invalid, NotAllowed
from portal.models import AuditEvent, Component, Tenant
from portal.transactions import service

PROCEDURE_KIND = "security_update"
# A routine patch (up to HIGH) is a Standard change Security approves; a CRITICAL one
# is proposed at HIGH priority, which the risk rules route to the Immediate Review. The
# requester may still change the priority on the draft.
PRIORITY_FOR_SEVERITY = {
    "CRITICAL": Priority.HIGH,
    "HIGH": Priority.MEDIUM,
    "MEDIUM": Priority.MEDIUM,
    "LOW": Priority.LOW,
    "UNKNOWN": Priority.MEDIUM,
}


@service
def component_executor_register(
    *,
    component: Component,
    kind: str,
    config: dict[str, Any],
    by,
    tenants: Iterable[Tenant] = (),
    is_active: bool = True,
) -> ComponentExecutor:
    """Give a component its executor (or change it), with the configuration checked by
    the executor itself. Administrators only."""
    if not getattr(by, "is_superuser", False):
        raise NotAllowed(
            "Only administrators configure update executors.",
            user=by,
            action="security.executor_refused",
            obj=component,
        )
    try:
        executor = executors.get(kind)
    except executors.UnknownExecutor:
        raise Invalid(f"Unknown executor kind {kind!r}.") from None
    try:
        clean = executor.clean_config(component, config or {})
    except ExecutorRefused as exc:
        raise Invalid(str(exc)) from None
    tenants = list(tenants)
    row, created = ComponentExecutor.objects.select_for_update().update_or_create(
        component=component,
        defaults={"kind": kind, "config": clean, "is_active": is_active},
    )
    row.tenants.set(tenants)
    audit_record(
        action="security.executor_registered" if created else "security.executor_changed",
        user=by,
        obj=component,
        details={"kind": kind, "config": clean, "tenants": [t.slug for t in tenants]},
    )
    return row


@service
def update_result_record(
    *,
    run_id: int,
    update: UpdateSpec,
    result: dict[str, Any],
    output: str,
    backup: ComponentBackup | None,
    started_at: datetime,
) -> UpdateResult:
    """One component's outcome in a run, audited on the change it belongs to."""
    row = UpdateResult.objects.create(
        run_id=run_id,
        position=result["position"],
        component_id=update.component_id,
        executor_kind=update.executor,
        ecosystem=update.ecosystem,
        package=update.package,
        planned_from=update.current_version,
        target_version=update.target_version,
        version_before=result["version_before"],
        version_after=result["version_after"],
        status=result["status"],
        failed_step=result["failed_step"],
        error=result["error"][:20_000],
        output=output[-200_000:],
        patches=result["patches"],
        backup=backup,
        started_at=started_at,
        finished_at=timezone.now(),
    )
    change = ChangeRequest.objects.filter(runs__pk=run_id).first()
    audit_record(
        action=f"security.update_{result['status'].lower()}",
        obj=change,
        outcome=(
            AuditEvent.Outcome.SUCCESS
            if result["status"] == UpdateResult.Status.SUCCESS
            else AuditEvent.Outcome.FAILURE
        ),
        details={
            "component": update.component,
            "package": update.package,
            "version_before": result["version_before"],
            "version_after": result["version_after"],
            "failed_step": result["failed_step"],
            "error": result["error"][:500],
            "backup_sha256": result["backup_sha256"],
            "run": run_id,
        },
    )
    return row


# --- proposing a security update --------------------------------------------------------------


def _target_version(open_rows: list[Exposure]) -> tuple[str, list[Exposure]]:
    """The one version that fixes every open advisory with a known fix."""
    fixable = [e for e in open_rows if e.fixed_version]
    if not fixable:
        ids = ", ".join(e.advisory.osv_id for e in open_rows)
        raise Invalid(f"No fixed version is known for {ids}; there is nothing to update to yet.")
    first = open_rows[0]
    package = first.executor.packages.filter(ecosystem=first.ecosystem, name=first.package).first()
    ordering = package.metadata.get("ordering") if package else None
    compare = versions.comparator(first.ecosystem, ordering=ordering)
    try:
        target = versions.newest([e.fixed_version for e in fixable], compare)
    except versions.VersionUnparsable as exc:
        raise Invalid(str(exc)) from None
    return target, fixable


@service
def security_update_propose(
    *, exposure: Exposure, by, now: datetime | None = None
) -> ChangeRequest:
    """A draft SECURITY change that updates the exposure's package on its component to
    the version fixing every open advisory on it, with the procedure filled in."""
    from changes.services import change_create
    from maintenance.procedures import registry
    from maintenance.services import change_procedure_add

    if not selectors.may_propose(by):
        raise NotAllowed(
            "Only Security and Operations propose security updates.",
            user=by,
            action="security.propose_refused",
        )
    row = exposure.executor
    if not selectors.visible_executors(by).filter(pk=row.pk).exists():
        raise NotAllowed(
            "You may not see this component.",
            user=by,
            action="security.propose_refused",
            obj=row.component,
        )
    now = now or timezone.now()
    open_rows = list(
        row.exposures.filter(
            resolved_at__isnull=True, ecosystem=exposure.ecosystem, package=exposure.package
        )
        .select_related("advisory", "executor")
        .order_by("-severity_rank", "exposed_since")
    )
    if not open_rows:
        raise Invalid("This exposure was resolved in the meantime; reload the page.")
    target, fixed = _target_version(open_rows)
    component = row.component
    patches = "\n".join(
        f"{e.package} | {e.advisory.osv_id} | {e.severity} | {e.advisory.title[:150]}"
        for e in fixed
    )
    params = {
        "updates": f"{component.name} | {exposure.package} | {target}",
        "patches": patches,
        "sql_checks": "",
        "commands": "",
        "timeout_minutes": "30",
    }
    procedure = registry.get(PROCEDURE_KIND)
    # Checked before the change exists, so a target nobody can install files nothing.
    try:
        clean = procedure.clean_params(params)
    except ValidationError as exc:
        raise Invalid("; ".join(exc.messages)) from None
    except (ExecutorRefused, UpdateFailed) as exc:
        raise Invalid(str(exc)) from None
    update = UpdateSpec.from_json(clean["updates"][0])
    worst = open_rows[0]
    unfixed = [e.advisory.osv_id for e in open_rows if not e.fixed_version]
    days = max((now - e.exposed_since).days for e in open_rows)
    advisories = "\n".join(
        f"- {e.advisory.osv_id} ({e.severity}"
        + (f", {', '.join(e.advisory.aliases[:3])}" if e.advisory.aliases else "")
        + f"): {e.advisory.title[:200]}; fixed in {e.fixed_version or 'no release yet'}"
        for e in open_rows
    )
    checks = "; ".join(c.label for c in update.checks) or "none declared"
    data = {
        "title": f"Security update: {exposure.package} {update.current_version} → {target} "
        f"on {component.name}"[:200],
        "description": (
            f"{component.name} runs {exposure.package} {update.current_version}, which "
            f"{len(open_rows)} open advisory(ies) cover; exposed for {days} day(s).\n\n"
            f"{advisories}\n\nProposed from the Patch compliance page."
            + (f"\n\nNot fixed by this update: {', '.join(unfixed)}." if unfixed else "")
        ),
        "implementation_plan": (
            f"The Security update procedure, in the maintenance window: back up "
            f"{component.name} ({update.executor}), apply {fixed[0].package} {target} "
            f"({update.patches[0].artifact if update.patches else target}), verify."
        ),
        "backout_plan": update.rollback,
        "verification_plan": (
            f"{exposure.package} is at {target} on {component.name}; checks: {checks}; "
            "the inventory shows the advisories resolved."
        ),
        "type": ChangeType.SECURITY,
        "priority": PRIORITY_FOR_SEVERITY.get(worst.severity, Priority.MEDIUM),
        "proposed_start": next_routine_start(now),
        "window_minutes": 60,
        "blackout_exception": False,
    }
    change = change_create(
        by=by,
        data=data,
        components=[component],
        services=[component.service] if component.service_id else [],
        tenants=filing_tenants(by, row.tenants.all()),
    )
    change_procedure_add(change=change, by=by, kind=PROCEDURE_KIND, params=params)
    audit_record(
        action="security.update_proposed",
        user=by,
        obj=change,
        details={
            "component": component.name,
            "package": exposure.package,
            "from": update.current_version,
            "to": target,
            "advisories": [e.advisory.osv_id for e in fixed],
        },
    )
    return change
