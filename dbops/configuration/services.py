"""Every write of configuration management: proposals (a draft CONFIGURATION change
carrying its set and the procedure that applies it), what a run records on the set,
and audited rule edits. Reads from a target happen before any portal transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from changes.access import filing_tenants
from changes.models import ChangeRequest, ChangeType, Priority
from changes.services import change_create
from dbops import access
from dbops.configuration import apply as configuration
from dbops.configuration import validation as checks
from dbops.configuration.models import (
    ConfigurationChange,
    ConfigurationChangeSet,
    ConfigurationRule,
)
from dbops.configuration.rules import Validation
from dbops.models import DatabaseTarget
from dbops.services.common import role_used
from dbops.services.indexes import PROPOSAL_WINDOW_MINUTES
from maintenance.scheduling import next_routine_start
from maintenance.services import change_procedure_add
from portal.audit import audit_record
from portal.errors import Invalid, NotAllowed
from portal.models import AuditEvent
from portal.transactions import service

PROCEDURE_KIND = "db_configuration"
WORKER = "worker"


class Refused(Invalid):
    """The set breaks a rule: nothing was written; the validation says which."""

    def __init__(self, validation: Validation):
        super().__init__("The change set was refused: " + validation.summary())
        self.validation = validation


def _deny(by, target: DatabaseTarget, action: str, reason: str, details=None) -> None:
    with transaction.atomic():
        audit_record(
            action=action,
            user=by,
            role=role_used(by),
            obj=target,
            outcome=AuditEvent.Outcome.DENIED,
            details={"reason": reason, **(details or {})},
        )


def _check_allowed(by, target: DatabaseTarget, action: str) -> None:
    if not access.is_database_operator(by):
        raise NotAllowed(
            "Your roles do not allow database operations.",
            user=by,
            action=action,
            obj=target,
            role=role_used(by),
            details={"why": "roles without database operations"},
        )
    if not access.targets_visible_to(by).filter(pk=target.pk).exists():
        raise NotAllowed(
            "You may not use this database target.",
            user=by,
            action=action,
            obj=target,
            role=role_used(by),
            details={"why": "target not visible"},
        )


@service(atomic=False)
def configuration_set_check(
    *, target: DatabaseTarget, entries: list[tuple[str, str]], by
) -> Validation:
    """Every verdict on a set, without writing anything."""
    _check_allowed(by, target, "dbops.configuration.checked")
    return checks.validate(target, checks.clean_entries(entries))


def _statements(validation: Validation) -> list[str]:
    return [
        configuration.statement(e.parameter, e.value).as_string() + ";" for e in validation.entries
    ]


def _proposal_text(target: DatabaseTarget, validation: Validation, source: str) -> dict[str, str]:
    names = [e.parameter for e in validation.entries]
    restart = validation.restart_required
    lines = [
        f"- {e.parameter}: {e.current or '—'} → {e.new_display}"
        + (" (restart required)" if e.restart_required else "")
        for e in validation.entries
    ]
    verdicts = [
        f"- {'PASS' if v.passed else 'FAIL'} {v.rule}{f' [{v.parameter}]' if v.parameter else ''}: "
        f"{v.message} (value {v.value}; limit {v.limit})"
        for v in validation.verdicts
    ]
    origin = {
        ConfigurationChangeSet.Source.SUGGESTION: "a PGTune-style suggestion",
        ConfigurationChangeSet.Source.MANUAL: "the target page",
    }.get(source, "the target page")
    if restart and target.restartable:
        restart_text = (
            f"Restart required for {', '.join(restart)}: the procedure restarts the server "
            "with the target's configured restart command after the reload (an approved "
            "step of this change) and verifies the values after it."
        )
    elif restart:
        restart_text = (
            f"Restart required for {', '.join(restart)}: the target is not restartable by "
            "the portal, so these values show as pending restart on its health page until "
            "the server is restarted."
        )
    else:
        restart_text = "No restart needed: every setting takes effect on reload."
    return {
        "title": f"Configure {target.name}: {', '.join(names)}"[:200],
        "description": (
            f"Configuration change set on database target “{target.name}”, proposed from "
            f"{origin}:\n\n"
            + "\n".join(lines)
            + "\n\nVerdicts when proposed:\n"
            + "\n".join(verdicts)
            + f"\n\n{restart_text}"
        ),
        "implementation_plan": (
            f"On “{target.name}” ({target.address}), in an autocommit session (ALTER SYSTEM "
            "refuses transaction blocks), after validating every entry again and taking a "
            "snapshot of pg_settings and pg_file_settings:\n\n"
            + "\n".join(_statements(validation))
            + "\nSELECT pg_reload_conf();\n\nThen check pg_file_settings.error. "
            + restart_text
        ),
        "backout_plan": (
            "If any entry fails (ALTER SYSTEM, pg_file_settings error, reload or "
            "verification), every entry is put back as postgresql.auto.conf had it at the "
            "snapshot (its previous value there, or ALTER SYSTEM RESET when it had none), "
            "the configuration is reloaded and the snapshot verified back in pg_settings. "
            "Values before: "
            + "; ".join(f"{e.parameter} = {e.current}" for e in validation.entries)
        ),
        "verification_plan": (
            "pg_settings shows each new value ("
            + ", ".join(f"SHOW {n}" for n in names)
            + ")"
            + (
                ", or pending_restart for the restart-required ones until the restart"
                if restart
                else ""
            )
            + "; pg_file_settings reports no error."
        ),
    }


@service(atomic=False)
def configuration_set_propose(
    *,
    target: DatabaseTarget,
    entries: list[tuple[str, str]],
    by,
    source: str = ConfigurationChangeSet.Source.MANUAL,
    now: datetime | None = None,
) -> ChangeRequest:
    """Validate a set on the target and file it as a draft CONFIGURATION change that
    carries the set and the "Configuration change" procedure. A set breaking any rule
    is refused (audited) and nothing is written."""
    _check_allowed(by, target, "dbops.configuration.proposed")
    cleaned = checks.clean_entries(entries)
    validation = checks.validate(target, cleaned)
    if not validation.ok:
        _deny(
            by,
            target,
            "dbops.configuration.refused",
            validation.summary(),
            {"failures": [v.as_dict() for v in validation.failures]},
        )
        raise Refused(validation)
    return _propose_store(
        target=target, validation=validation, source=source, by=by, now=now or timezone.now()
    )


@service
def _propose_store(
    *, target: DatabaseTarget, validation: Validation, source: str, by, now: datetime
) -> ChangeRequest:
    """The draft change, its set and its procedure: one transaction."""
    change = change_create(
        by=by,
        data={
            **_proposal_text(target, validation, source),
            "type": ChangeType.CONFIGURATION,
            "priority": Priority.LOW,
            "proposed_start": next_routine_start(now),
            "window_minutes": PROPOSAL_WINDOW_MINUTES,
            "blackout_exception": False,
        },
        components=[target.component],
        services=[],
        tenants=filing_tenants(by, target.tenants.all()),
    )
    change_set = ConfigurationChangeSet.objects.create(
        target=target,
        change=change,
        source=source,
        restart_required=bool(validation.restart_required),
        verdicts=[v.as_dict() for v in validation.set_verdicts],
        proposed_by=by,
    )
    ConfigurationChange.objects.bulk_create(
        ConfigurationChange(
            change_set=change_set,
            position=n,
            parameter=e.parameter,
            current_value=e.current,
            new_value=e.value,
            normalized=e.normalized,
            unit=e.info.unit or "",
            vartype=e.info.vartype,
            context=e.info.context,
            restart_required=e.restart_required,
            verdicts=[v.as_dict() for v in e.verdicts],
        )
        for n, e in enumerate(validation.entries, start=1)
    )
    audit_record(
        action="dbops.configuration.proposed",
        user=by,
        role=role_used(by),
        obj=change,
        details={
            "target": target.name,
            "change_set": change_set.pk,
            "source": source,
            "entries": [[e.parameter, e.current, e.new_display] for e in validation.entries],
            "restart_required": validation.restart_required,
        },
    )
    change_procedure_add(
        change=change, by=by, kind=PROCEDURE_KIND, params={"change_set": change_set.pk}
    )
    return change


# --- what a run records on its set (the worker: no user) ---------------------------------


@service
def configuration_set_for_run(
    *,
    target: DatabaseTarget,
    change_id: int,
    run_id: int,
    validation: Validation,
    source: str = ConfigurationChangeSet.Source.TUNING,
) -> ConfigurationChangeSet:
    """The set a run applies on its own (a tuning adjustment), validated just now."""
    change = ChangeRequest.objects.select_related("requester").get(pk=change_id)
    change_set = ConfigurationChangeSet.objects.create(
        target=target,
        change=change,
        run_id=run_id,
        source=source,
        restart_required=bool(validation.restart_required),
        verdicts=[v.as_dict() for v in validation.set_verdicts],
        apply_verdicts=[v.as_dict() for v in validation.set_verdicts],
        proposed_by=change.requester,
    )
    ConfigurationChange.objects.bulk_create(
        ConfigurationChange(
            change_set=change_set,
            position=n,
            parameter=e.parameter,
            current_value=e.current,
            value_at_apply=e.current,
            new_value=e.value,
            normalized=e.normalized,
            unit=e.info.unit or "",
            vartype=e.info.vartype,
            context=e.info.context,
            restart_required=e.restart_required,
            verdicts=[v.as_dict() for v in e.verdicts],
            apply_verdicts=[v.as_dict() for v in e.verdicts],
        )
        for n, e in enumerate(validation.entries, start=1)
    )
    _record(
        change_set,
        "dbops.configuration.run_set",
        {
            "source": source,
            "entries": [[e.parameter, e.current, e.new_display] for e in validation.entries],
        },
    )
    return change_set


def _record(change_set: ConfigurationChangeSet, action: str, details: dict[str, Any], outcome=None):
    audit_record(
        action=action,
        username=WORKER,
        obj=change_set.change,
        outcome=outcome or AuditEvent.Outcome.SUCCESS,
        details={"change_set": change_set.pk, "target": change_set.target.name, **details},
    )


@service
def configuration_set_revalidated(
    *, change_set: ConfigurationChangeSet, validation: Validation, run_id: int | None
) -> None:
    """The values read again at apply and the verdicts given again."""
    by_name = {e.parameter: e for e in validation.entries}
    locked = ConfigurationChangeSet.objects.select_for_update().get(pk=change_set.pk)
    locked.apply_verdicts = [v.as_dict() for v in validation.set_verdicts]
    locked.run_id = run_id
    locked.save(update_fields=["apply_verdicts", "run"])
    for entry in locked.entries.all():
        result = by_name.get(entry.parameter)
        if result is None:
            continue
        entry.value_at_apply = result.current
        entry.apply_verdicts = [v.as_dict() for v in result.verdicts]
        entry.save(update_fields=["value_at_apply", "apply_verdicts"])
    _record(
        locked,
        "dbops.configuration.revalidated",
        {"passed": validation.ok, "failures": [v.as_dict() for v in validation.failures]},
        None if validation.ok else AuditEvent.Outcome.FAILURE,
    )


@service
def configuration_set_snapshot_record(
    *, change_set: ConfigurationChangeSet, snapshot: configuration.Snapshot
) -> None:
    """The snapshot taken before ALTER SYSTEM, and each entry's rollback from it."""
    locked = ConfigurationChangeSet.objects.select_for_update().get(pk=change_set.pk)
    locked.snapshot = snapshot.as_json()
    locked.status = ConfigurationChangeSet.Status.APPLYING
    locked.save(update_fields=["snapshot", "status"])
    for entry in locked.entries.all():
        previous = snapshot.auto_conf(entry.parameter)
        entry.rollback_reset = previous is None
        entry.rollback_value = previous or ""
        entry.save(update_fields=["rollback_reset", "rollback_value"])


@service
def configuration_set_applied(
    *, change_set: ConfigurationChangeSet, verified: list[configuration.Verified]
) -> ConfigurationChangeSet:
    by_name = {v.parameter: v for v in verified}
    pending = [v.parameter for v in verified if v.pending_restart]
    locked = ConfigurationChangeSet.objects.select_for_update().get(pk=change_set.pk)
    locked.status = ConfigurationChangeSet.Status.APPLIED
    locked.applied_at = locked.finished_at = timezone.now()
    locked.restart_status = (
        ConfigurationChangeSet.Restart.PENDING
        if pending
        else ConfigurationChangeSet.Restart.NOT_NEEDED
    )
    locked.error = ""
    locked.save(update_fields=["status", "applied_at", "finished_at", "restart_status", "error"])
    for entry in locked.entries.all():
        v = by_name.get(entry.parameter)
        if v is None:
            continue
        entry.status = (
            ConfigurationChange.Status.PENDING_RESTART
            if v.pending_restart
            else ConfigurationChange.Status.APPLIED
        )
        entry.applied_value = v.shown
        entry.message = v.message
        entry.save(update_fields=["status", "applied_value", "message"])
    _record(
        locked,
        "dbops.configuration.applied",
        {"verified": [[v.parameter, v.message] for v in verified], "pending_restart": pending},
    )
    return locked


@service
def configuration_set_restarted(
    *,
    change_set: ConfigurationChangeSet,
    result: dict[str, Any],
    verified: list[configuration.Verified],
) -> None:
    by_name = {v.parameter: v for v in verified}
    locked = ConfigurationChangeSet.objects.select_for_update().get(pk=change_set.pk)
    locked.restart_status = ConfigurationChangeSet.Restart.DONE
    locked.save(update_fields=["restart_status"])
    for entry in locked.entries.all():
        v = by_name.get(entry.parameter)
        if v is not None:
            entry.status = ConfigurationChange.Status.APPLIED
            entry.applied_value, entry.message = v.shown, v.message
            entry.save(update_fields=["status", "applied_value", "message"])
    _record(locked, "dbops.configuration.restarted", {"restart": result})


@service
def configuration_set_rolled_back(
    *, change_set: ConfigurationChangeSet, reason: str, problems: list[str]
) -> None:
    """Every entry restored (or, with ``problems``, not all of them: FAILED)."""
    locked = ConfigurationChangeSet.objects.select_for_update().get(pk=change_set.pk)
    locked.status = (
        ConfigurationChangeSet.Status.FAILED
        if problems
        else ConfigurationChangeSet.Status.ROLLED_BACK
    )
    locked.finished_at = timezone.now()
    locked.error = reason + (f"\nNot restored: {'; '.join(problems)}" if problems else "")
    locked.restart_status = ConfigurationChangeSet.Restart.NOT_NEEDED
    locked.save(update_fields=["status", "finished_at", "error", "restart_status"])
    locked.entries.update(status=ConfigurationChange.Status.ROLLED_BACK)
    _record(
        locked,
        "dbops.configuration.rolled_back",
        {"reason": reason, "not_restored": problems},
        AuditEvent.Outcome.FAILURE,
    )


# --- rules (admin) -------------------------------------------------------------------------


@service
def configuration_rule_save(
    *, rule: ConfigurationRule, by, changed: list[str], created: bool
) -> ConfigurationRule:
    rule.full_clean()
    rule.save()
    audit_record(
        action="dbops.configuration_rule.created"
        if created
        else "dbops.configuration_rule.updated",
        user=by,
        obj=rule,
        details={
            "code": rule.code,
            "fields": changed,
            "rule_type": rule.rule_type,
            "parameter": rule.parameter,
            "minimum": rule.minimum,
            "maximum": rule.maximum,
            "factor": str(rule.factor) if rule.factor is not None else None,
            "share_percent": rule.share_percent,
            "headroom_percent": rule.headroom_percent,
            "enabled": rule.enabled,
        },
    )
    return rule


@service
def configuration_rule_delete(*, rule: ConfigurationRule, by) -> None:
    audit_record(
        action="dbops.configuration_rule.deleted",
        user=by,
        obj=rule,
        details={"code": rule.code, "rule_type": rule.rule_type},
    )
    rule.delete()
