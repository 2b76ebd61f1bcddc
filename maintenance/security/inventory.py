"""Writes for the component inventory: discovery results, version history, exposures.

Discovery talks to the component (a database, pip, a script) before any transaction
opens; what it found is then written in one transaction with its history rows and the
exposures it opens or resolves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from maintenance.security import executors, selectors, versions
from maintenance.security.executors.base import ExecutorRefused, Installed, UpdateFailed
from maintenance.security.models import (
    AdvisoryPackage,
    ComponentExecutor,
    Exposure,
    InstalledPackage,
    VersionChange,
)
from portal.audit import audit_record
from portal.errors import Invalid, NotAllowed
from portal.models import AuditEvent
from portal.transactions import service

logger = logging.getLogger(__name__)


def _discover(executor: ComponentExecutor) -> tuple[list[Installed] | None, str]:
    try:
        impl = executors.get(executor.kind)
    except executors.UnknownExecutor:
        return None, f"No executor of kind {executor.kind!r} is registered."
    try:
        return impl.discover(executor.component, executor.config), ""
    except (ExecutorRefused, UpdateFailed) as exc:
        return None, str(getattr(exc, "message", exc))


@service
def inventory_refresh(
    *, executor: ComponentExecutor, by=None, run_id: int | None = None, now: datetime | None = None
) -> ComponentExecutor:
    """Discover the component's installed versions now and record what changed.

    ``by`` is the person who asked (on demand); beat and the update runs pass none.
    """
    if by is not None and not selectors.may_manage(by):
        raise NotAllowed(
            "Only Security and Operations refresh the inventory.",
            user=by,
            action="security.inventory_refused",
            obj=executor.component,
        )
    found, error = _discover(executor)
    now = now or timezone.now()
    source = VersionChange.Source.UPDATE if run_id else VersionChange.Source.DISCOVERY
    locked = (
        ComponentExecutor.objects.select_for_update()
        .select_related("component")
        .get(pk=executor.pk)
    )
    if found is None:
        locked.last_error = error[:2000]
        locked.save(update_fields=["last_error"])
        audit_record(
            action="security.inventory_failed",
            user=by,
            obj=locked.component,
            outcome=AuditEvent.Outcome.FAILURE,
            details={"error": error[:500]},
        )
    else:
        changes = _record(locked, found, now=now, source=source, run_id=run_id)
        locked.last_refreshed_at = now
        locked.last_error = ""
        locked.save(update_fields=["last_refreshed_at", "last_error"])
        if by is not None or changes:
            audit_record(
                action="security.inventory_refreshed",
                user=by,
                obj=locked.component,
                details={"packages": len(found), "changes": changes[:50]},
            )
        exposures_refresh(executor=locked, now=now)
    if found is None and by is not None:
        raise Invalid(f"Discovery on {executor.component} failed: {error}")
    return locked


def _record(
    executor: ComponentExecutor,
    found: list[Installed],
    *,
    now: datetime,
    source: str,
    run_id: int | None,
) -> list[str]:
    existing = {(p.ecosystem, p.name): p for p in executor.packages.all()}
    history: list[VersionChange] = []
    seen = set()

    def change(ecosystem: str, name: str, before: str, after: str) -> None:
        history.append(
            VersionChange(
                executor=executor,
                ecosystem=ecosystem,
                name=name,
                version_before=before,
                version_after=after,
                observed_at=now,
                source=source,
                run_id=run_id,
            )
        )

    for item in found:
        key = (item.ecosystem, item.name)
        if key in seen:
            continue
        seen.add(key)
        row = existing.get(key)
        if row is None:
            InstalledPackage.objects.create(
                executor=executor,
                ecosystem=item.ecosystem,
                name=item.name,
                version=item.version,
                metadata=item.metadata,
                first_seen_at=now,
                version_since=now,
                last_seen_at=now,
            )
            change(item.ecosystem, item.name, "", item.version)
            continue
        fields = ["last_seen_at", "metadata"]
        if row.version != item.version:
            change(item.ecosystem, item.name, row.version, item.version)
            row.version, row.version_since = item.version, now
            fields += ["version", "version_since"]
        row.last_seen_at, row.metadata = now, item.metadata
        row.save(update_fields=fields)
    gone = [row for key, row in existing.items() if key not in seen]
    for row in gone:
        change(row.ecosystem, row.name, row.version, "")
    InstalledPackage.objects.filter(pk__in=[r.pk for r in gone]).delete()
    VersionChange.objects.bulk_create(history)
    return [f"{h.name}: {h.version_before or '—'} → {h.version_after or '—'}" for h in history]


def inventory_refresh_all() -> int:
    """Beat: refresh every active component; one failing component never stops the rest."""
    done = 0
    for executor in ComponentExecutor.objects.filter(is_active=True).select_related("component"):
        try:
            inventory_refresh(executor=executor)
            done += 1
        except Exception:
            logger.exception("inventory refresh of %s failed", executor)
    return done


# --- exposures --------------------------------------------------------------------------


def exposures_refresh(*, executor: ComponentExecutor, now: datetime | None = None) -> int:
    """Open an exposure for every installed package an advisory covers, resolve the ones
    it no longer covers. Runs inside the caller's transaction."""
    now = now or timezone.now()
    packages = {(p.ecosystem, p.name): p for p in executor.packages.all()}
    matched: dict[tuple, tuple] = {}
    entries = (
        AdvisoryPackage.objects.filter(
            name__in={name for _, name in packages}, advisory__withdrawn__isnull=True
        )
        .select_related("advisory")
        .order_by("advisory_id", "pk")
    )
    for entry in entries:
        package = packages.get((entry.ecosystem, entry.name))
        if package is None:
            continue
        try:
            found = versions.evaluate(
                package.version,
                ecosystem=entry.ecosystem,
                ranges=entry.ranges,
                versions=entry.versions,
                ordering=package.metadata.get("ordering"),
            )
        except versions.VersionUnparsable as exc:
            logger.warning("%s on %s: %s", entry.advisory.osv_id, executor, exc)
            continue
        key = (entry.advisory_id, entry.ecosystem, entry.name)
        if found.affected and (key not in matched or matched[key][1].fixed is None):
            matched[key] = (package, found, entry.advisory)
    open_rows = {
        (e.advisory_id, e.ecosystem, e.package): e
        for e in executor.exposures.filter(resolved_at__isnull=True)
    }
    for key, (package, found, advisory) in matched.items():
        row = open_rows.pop(key, None)
        since = max(advisory.published or advisory.imported_at, package.version_since)
        values = {
            "installed_version": package.version,
            "severity": advisory.severity,
            "severity_rank": advisory.severity_rank,
            "fixed_version": found.fixed or "",
        }
        if row is None:
            Exposure.objects.create(
                executor=executor,
                advisory=advisory,
                ecosystem=package.ecosystem,
                package=package.name,
                exposed_since=since,
                detected_at=now,
                **values,
            )
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            row.save(update_fields=list(values))
    for (_, ecosystem, name), row in open_rows.items():
        package = packages.get((ecosystem, name))
        row.resolved_at = now
        row.resolution = (
            f"now at {package.version}" if package is not None else "no longer installed"
        )
        if row.advisory.withdrawn:
            row.resolution = "advisory withdrawn"
        row.save(update_fields=["resolved_at", "resolution"])
    return len(matched)


def exposures_refresh_for(keys: Iterable[tuple[str, str]], advisory_ids: Iterable[int]) -> int:
    """After an import: every component with one of these packages, or an open exposure
    on one of these advisories."""
    keys = set(keys)
    names = {name for _, name in keys}
    candidates = ComponentExecutor.objects.filter(packages__name__in=names).distinct()
    ids = {
        e.pk
        for e in candidates.prefetch_related("packages")
        if any((p.ecosystem, p.name) in keys for p in e.packages.all())
    }
    ids |= set(
        Exposure.objects.filter(
            advisory_id__in=list(advisory_ids), resolved_at__isnull=True
        ).values_list("executor_id", flat=True)
    )
    # Locked like a discovery locks its component, so the two never open one exposure twice.
    for executor in ComponentExecutor.objects.select_for_update().filter(pk__in=ids).order_by("pk"):
        exposures_refresh(executor=executor)
    return len(ids)
