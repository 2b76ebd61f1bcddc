"""The rules of pre-approved standard changes, in one place: when a change filed from a
template stays pre-approved, how a template's title pattern is filled in, and how the
procedures a template carries reach the change (maintenance owns procedures and
registers that bridge in its ``AppConfig.ready()``).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from changes.models import (
    ROUTINE_MAX_WINDOW_MINUTES,
    ChangeRequest,
    RiskLevel,
    RiskThreshold,
    TemplateStatus,
    TemplateVersion,
)
from portal.errors import Invalid

TITLE_FIELDS = ("component", "tenant", "date")
PLAN_FIELDS = ("description", "implementation_plan", "backout_plan", "verification_plan")


# --- the title pattern ------------------------------------------------------------------


def check_title_pattern(pattern: str) -> str:
    """A pattern may use {component}, {tenant} and {date}; anything else is refused (an
    attribute or index lookup in a format string would read what it should not)."""
    pattern = (pattern or "").strip()
    if not pattern:
        raise Invalid("Give the template a title pattern.")
    allowed = "The title pattern may only use {component}, {tenant} and {date}."
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError:
        raise Invalid(f"The title pattern has an unmatched brace. {allowed}") from None
    for _, field, spec, conversion in parts:
        if field is not None and (field not in TITLE_FIELDS or spec or conversion):
            raise Invalid(allowed)
    return pattern


def render_title(pattern: str, *, components, tenants, start: datetime) -> str:
    values = {
        "component": ", ".join(sorted(c.name for c in components)),
        "tenant": ", ".join(sorted(t.name for t in tenants)),
        "date": f"{start:%Y-%m-%d}",
    }
    return pattern.format(**values)[:200]


# --- the risk ceiling ---------------------------------------------------------------------


def ceiling_limit() -> int:
    """A pre-approved change stays Low risk, so a ceiling at or above the High threshold
    would promise what the risk assessment never grants."""
    high = RiskThreshold.objects.filter(level=RiskLevel.HIGH).values_list("min_score", flat=True)
    return (high.first() or 45) - 1


def check_limits(*, max_window_minutes: int, risk_ceiling: int) -> None:
    if not 1 <= max_window_minutes <= ROUTINE_MAX_WINDOW_MINUTES:
        raise Invalid(
            f"A standard change fits a routine window: its maximum window is 1 to "
            f"{ROUTINE_MAX_WINDOW_MINUTES} minutes."
        )
    limit = ceiling_limit()
    if not 0 <= risk_ceiling <= limit:
        raise Invalid(
            f"The risk ceiling must be 0 to {limit}: a standard change stays below the "
            f"High risk threshold ({limit + 1})."
        )


# --- whether a change stays pre-approved ------------------------------------------------


@dataclass(frozen=True)
class PreApproval:
    version: TemplateVersion
    reason: str = ""  # why the change falls back to the normal review; empty: it does not

    @property
    def granted(self) -> bool:
        return not self.reason


def preapproval(change: ChangeRequest, assessment) -> PreApproval | None:
    """None for a change not filed from a template; otherwise whether it stays
    pre-approved, and if not, why (it then goes through the normal review)."""
    version = change.template_version
    if version is None:
        return None
    reason = _refusal(change, version, assessment)
    return PreApproval(version=version, reason=reason)


def _refusal(change: ChangeRequest, version: TemplateVersion, assessment) -> str:
    template = version.template
    if template.retired:
        return f"{template.public_id} was retired."
    if version.status != TemplateStatus.APPROVED:
        return f"{version.public_id} is {version.get_status_display().lower()}, not approved."
    if assessment.level != RiskLevel.LOW:
        return f"The risk is {assessment.level}; a standard change must be Low risk."
    if assessment.score > version.risk_ceiling:
        return (
            f"The risk score {assessment.score} is above the template's ceiling of "
            f"{version.risk_ceiling}."
        )
    if change.type != version.type or any(
        getattr(change, f) != getattr(version, f) for f in PLAN_FIELDS
    ):
        return "Its type or plans differ from the template's."
    allowed_components = set(version.components.values_list("pk", flat=True))
    if not set(change.components.values_list("pk", flat=True)) <= allowed_components:
        return "It names a component the template does not cover."
    allowed_tenants = set(version.tenants.values_list("pk", flat=True))
    if not set(change.tenants.values_list("pk", flat=True)) <= allowed_tenants:
        return "It names a tenant the template does not cover."
    if change.window_minutes > version.max_window_minutes:
        return (
            f"Its window of {change.window_minutes} minutes is longer than the template's "
            f"{version.max_window_minutes}."
        )
    if change.blackout_exception:
        return "It asks for a blackout exception, which no standard change may."
    if change.procedure_count != len(version.procedures):
        return "Its procedures differ from the template's."
    return ""


# --- procedures: maintenance owns them -----------------------------------------------------


@dataclass(frozen=True)
class ProcedureBridge:
    # The procedures of a change, as [{kind, params, summary}].
    snapshot: Callable[[ChangeRequest], list[dict[str, Any]]]
    # Attach a template's procedures to a change being filed (inside its transaction).
    attach: Callable[..., None]


_bridge: list[ProcedureBridge] = []


def register_procedure_bridge(bridge: ProcedureBridge) -> None:
    _bridge[:] = [bridge]


def procedures_of(change: ChangeRequest) -> list[dict[str, Any]]:
    return _bridge[0].snapshot(change) if _bridge else []


def attach_procedures(*, change: ChangeRequest, by, procedures: list[dict[str, Any]]) -> None:
    if not procedures:
        return
    if not _bridge:
        raise Invalid("Procedures cannot be attached: the maintenance app is not installed.")
    _bridge[0].attach(change=change, by=by, procedures=procedures)
