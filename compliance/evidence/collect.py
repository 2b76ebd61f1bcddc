"""Everything an evidence pack holds about one change, as plain data (sections of rows).

Output and free text go through the redaction patterns; audit events do not (they must
still match their hashes), but they hold no procedure output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.db.models import Prefetch, Q

from changes.models import Approval, ChangeRequest
from maintenance.models import MaintenanceWindow, ProcedureRun, ScheduledChange, StepRun
from maintenance.procedures import UnknownProcedure, registry
from portal.audit import canonical_content, chain_head
from portal.models import AuditEvent
from portal.redaction import redact, redact_data


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def _user(user) -> str:
    return user.get_username() if user is not None else ""


def change_section(c: ChangeRequest) -> dict[str, Any]:
    return {
        "id": c.public_id,
        "title": c.title,
        "description": redact(c.description),
        "type": c.type,
        "priority": c.priority,
        "category": c.category,
        "risk_level": c.risk_level,
        "risk_score": c.risk_score,
        "state": c.state,
        "outcome": c.outcome,
        "tenants": ", ".join(t.name for t in c.tenants.all()),
        "components": ", ".join(x.name for x in c.components.all()),
        "services": ", ".join(s.name for s in c.services.all()),
        "proposed_start": iso(c.proposed_start),
        "window_minutes": c.window_minutes,
        "blackout_exception": c.blackout_exception,
        "implementation_plan": redact(c.implementation_plan),
        "backout_plan": redact(c.backout_plan),
        "verification_plan": redact(c.verification_plan),
        "requester": _user(c.requester),
        "started_by": _user(c.started_by),
        "implemented_by": _user(c.implemented_by),
        "verified_by": _user(c.verified_by),
        "created_at": iso(c.created_at),
        "submitted_at": iso(c.submitted_at),
        "decided_at": iso(c.decided_at),
        "executed_at": iso(c.executed_at),
        "closed_at": iso(c.closed_at),
        "version": c.version,
    }


def approval_rows(approvals: list[Approval]) -> list[dict[str, Any]]:
    return [
        {
            "role": a.role,
            "phase": a.phase,
            "status": a.status,
            "decided_by": _user(a.decided_by),
            "decided_at": iso(a.decided_at),
            "comments": redact(a.comments),
            "due_at": iso(a.due_at),
            "required_because": a.required_because,
            "escalated_at": iso(a.escalated_at),
        }
        for a in approvals
    ]


def delegation_rows(approvals: list[Approval], events: list[AuditEvent]) -> list[dict[str, Any]]:
    """Every delegation the trail recorded, and the one each approval holds now."""
    rows = [
        {
            "source": f"audit #{e.sequence}",
            "action": e.action,
            "role": e.role or e.details.get("role", ""),
            "by": e.username,
            "to": e.details.get("to", ""),
            "at": iso(e.created_at),
            "expires_at": e.details.get("expires_at", ""),
        }
        for e in events
        if ".delegat" in e.action
    ]
    rows += [
        {
            "source": "current",
            "action": "active" if a.delegation_active() else "expired",
            "role": a.role,
            "by": _user(a.delegated_by),
            "to": _user(a.delegated_to),
            "at": iso(a.delegated_at),
            "expires_at": iso(a.delegation_expires_at),
        }
        for a in approvals
        if a.delegated_to_id
    ]
    return rows


def window_rows(change: ChangeRequest) -> list[dict[str, Any]]:
    windows: dict[int, tuple[MaintenanceWindow, str]] = {}
    slot = ScheduledChange.objects.filter(change=change).select_related("window").first()
    if slot is not None:
        windows[slot.window_id] = (slot.window, f"scheduled at position {slot.position}")
    for run in ProcedureRun.objects.filter(change=change).select_related("execution__window"):
        windows.setdefault(run.execution.window_id, (run.execution.window, "ran in"))
    for window in MaintenanceWindow.objects.filter(for_change=change):
        windows.setdefault(window.pk, (window, "asked for this change"))
    rows = []
    for window, relation in windows.values():
        approvals = "; ".join(
            f"{a.role}: {a.status.lower()} by {_user(a.decided_by) or '-'}"
            for a in window.approvals.select_related("decided_by")
        )
        rows.append(
            {
                "window": window.pk,
                "relation": relation,
                "type": window.type,
                "title": window.title,
                "start": iso(window.start),
                "end": iso(window.end),
                "duration_minutes": window.duration_minutes,
                "status": window.status,
                "approvals": approvals,
            }
        )
    return rows


def _label(kind: str) -> str:
    try:
        return registry.get(kind).label
    except UnknownProcedure:
        return kind


def run_sections(change: ChangeRequest) -> tuple[list[dict], list[dict], list[dict]]:
    runs = list(
        ProcedureRun.objects.filter(change=change)
        .select_related("procedure")
        .prefetch_related(
            Prefetch("steps", queryset=StepRun.objects.select_related("completed_by"))
        )
        .order_by("execution_id", "procedure__position", "attempt")
    )
    run_rows, step_rows, figure_rows = [], [], []
    for run in runs:
        run_rows.append(
            {
                "run": run.pk,
                "procedure": _label(run.procedure.kind),
                "position": run.procedure.position,
                "parameters": json.dumps(redact_data(run.procedure.params), sort_keys=True),
                "attempt": run.attempt,
                "status": run.status,
                "window": run.execution.window_id if run.execution_id else None,
                "worker": run.worker,
                "queued_at": iso(run.queued_at),
                "started_at": iso(run.started_at),
                "finished_at": iso(run.finished_at),
                "error": redact(run.error),
                "result": json.dumps(redact_data(run.result), sort_keys=True, default=str),
            }
        )
        for step in sorted(run.steps.all(), key=lambda s: s.position):
            step_rows.append(
                {
                    "run": run.pk,
                    "position": step.position,
                    "kind": step.kind,
                    "name": step.name,
                    "status": step.status,
                    "started_at": iso(step.started_at),
                    "finished_at": iso(step.finished_at),
                    "completed_by": _user(step.completed_by),
                    "output": redact(step.output),
                    "evidence": redact(step.evidence),
                    "result": json.dumps(redact_data(step.result), sort_keys=True, default=str),
                }
            )
        try:
            figures = registry.get(run.procedure.kind).figures(run.result or {})
        except (UnknownProcedure, KeyError, TypeError, ValueError):
            figures = []
        for figure in figures:
            for row in figure.rows:
                figure_rows.append(
                    {
                        "run": run.pk,
                        "figure": figure.title,
                        "values": json.dumps(
                            dict(zip(figure.headers, [redact(str(v)) for v in row], strict=False)),
                            ensure_ascii=False,
                        ),
                    }
                )
    return run_rows, step_rows, figure_rows


def pir_rows(change: ChangeRequest) -> list[dict[str, Any]]:
    review = getattr(change, "review", None)
    if review is None:
        return []
    return [
        {
            "outcome": review.outcome,
            "notes": redact(review.notes),
            "follow_ups": redact(review.follow_ups),
            "reviewed_by": _user(review.reviewed_by),
            "reviewed_at": iso(review.reviewed_at),
        }
    ]


def corrective_rows(change: ChangeRequest) -> list[dict[str, Any]]:
    return [
        {
            "kind": a.kind,
            "linked_change": a.linked_change.public_id if a.linked_change_id else "",
            "note": redact(a.note),
            "recorded_by": _user(a.recorded_by),
            "recorded_role": a.recorded_role,
            "recorded_at": iso(a.recorded_at),
        }
        for a in change.corrective_actions.select_related("recorded_by", "linked_change")
    ]


def change_events(change: ChangeRequest) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            Q(object_type="changes.changerequest", object_id=change.public_id)
            | Q(
                object_type="changes.approval",
                object_id__in=[str(a.pk) for a in change.approvals.all()],
            )
        ).order_by("sequence")
    )


def event_row(e: AuditEvent) -> dict[str, Any]:
    """Exactly the fields the chain hashes (``portal.audit.canonical_content``) and the
    hashes, so the verifier can recompute each one without the portal."""
    row = json.loads(canonical_content(e))
    row["prev_hash"] = e.prev_hash
    row["hash"] = e.hash
    return row


def collect(change: ChangeRequest) -> dict[str, Any]:
    change = (
        ChangeRequest.objects.select_related(
            "requester", "started_by", "implemented_by", "verified_by", "review__reviewed_by"
        )
        .prefetch_related(
            "tenants",
            "components",
            "services",
            Prefetch(
                "approvals",
                queryset=Approval.objects.select_related(
                    "decided_by", "delegated_to", "delegated_by"
                ).order_by("phase", "role"),
            ),
        )
        .get(pk=change.pk)
    )
    approvals = list(change.approvals.all())
    events = change_events(change)
    runs, steps, figures = run_sections(change)
    sequence, head = chain_head()
    return {
        "change_obj": change,
        "change": change_section(change),
        "risk_factors": [
            {k: f.get(k) for k in ("key", "label", "value", "points", "why")}
            for f in (change.risk_factors or [])
        ],
        "approvals": approval_rows(approvals),
        "delegations": delegation_rows(approvals, events),
        "windows": window_rows(change),
        "runs": runs,
        "steps": steps,
        "figures": figures,
        "pir": pir_rows(change),
        "corrective_actions": corrective_rows(change),
        "events": [event_row(e) for e in events],
        "chain_head": {"sequence": sequence, "hash": head},
    }
