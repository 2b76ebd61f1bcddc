"""Risk assessment: score a change factor by factor, then route it (seed: Change Flow).

LOW → Standard change, HIGH → Emergency change (Immediate Review), CRITICAL → Urgent
change (Emergency Committee). A CRITICAL priority is always CRITICAL risk. Points and
thresholds are rows (RiskRule, RiskThreshold) that the admin can edit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from changes.models import (
    CATEGORY_FOR_RISK,
    ROUTINE_MAX_WINDOW_MINUTES,
    ChangeRequest,
    Priority,
    RiskFactor,
    RiskLevel,
    RiskRule,
    RiskThreshold,
    State,
)

FAILURE_LOOKBACK = timedelta(days=90)
# Factors matched by value (RiskRule.match); the others use numeric buckets (min_value).
CATEGORICAL = frozenset(
    {
        RiskFactor.PRIORITY,
        RiskFactor.TYPE,
        RiskFactor.BLACKOUT,
        RiskFactor.PROCEDURE_IMPACT,
        RiskFactor.DOWNTIME,
    }
)
CONFLICT_STATES = (State.APPROVED, State.SCHEDULED, State.IN_PROGRESS, State.VERIFYING)


@dataclass(frozen=True)
class FactorResult:
    key: str
    label: str
    value: str
    points: int
    why: str


@dataclass(frozen=True)
class Assessment:
    score: int
    level: str
    category: str
    factors: list[FactorResult] = field(default_factory=list)
    override: str = ""

    def factors_as_json(self) -> list[dict]:
        return [asdict(f) for f in self.factors]


@dataclass(frozen=True)
class RiskInputs:
    """What the score depends on, gathered from a change and the catalog's history."""

    priority: str
    type: str
    tenants: int
    services: int
    components: int
    window_minutes: int
    blackout_exception: bool
    lead_time_hours: float
    conflicts: list[str]
    failure_rate_percent: float
    finished_recently: int
    procedure_impact: str = ""
    requires_downtime: bool = False


def _rule_for(rules: list[RiskRule], factor: str, *, match: str = "", value=None):
    candidates = [r for r in rules if r.factor == factor and r.active]
    if factor in CATEGORICAL:
        return next((r for r in candidates if r.match == match), None)
    numeric = [
        r for r in candidates if r.min_value is not None and Decimal(str(value)) >= r.min_value
    ]
    return max(numeric, key=lambda r: r.min_value, default=None)


def score(inputs: RiskInputs, rules: list[RiskRule], thresholds: dict[str, int]) -> Assessment:
    labels = dict(RiskFactor.choices)
    measured: list[tuple[str, str, str, object]] = [
        (RiskFactor.PRIORITY, inputs.priority, inputs.priority, None),
        (RiskFactor.TYPE, inputs.type, inputs.type, None),
        (RiskFactor.TENANTS, str(inputs.tenants), "", inputs.tenants),
        (RiskFactor.SERVICES, str(inputs.services), "", inputs.services),
        (RiskFactor.COMPONENTS, str(inputs.components), "", inputs.components),
        (
            RiskFactor.WINDOW,
            f"{inputs.window_minutes} min (routine maximum {ROUTINE_MAX_WINDOW_MINUTES})",
            "",
            inputs.window_minutes,
        ),
        (
            RiskFactor.BLACKOUT,
            "yes" if inputs.blackout_exception else "no",
            "yes" if inputs.blackout_exception else "no",
            None,
        ),
        (
            RiskFactor.LEAD_TIME,
            f"{inputs.lead_time_hours:.1f} h",
            "",
            max(inputs.lead_time_hours, 0),
        ),
        (
            RiskFactor.CONFLICTS,
            ", ".join(inputs.conflicts) if inputs.conflicts else "none",
            "",
            len(inputs.conflicts),
        ),
        (
            RiskFactor.FAILURE_RATE,
            f"{inputs.failure_rate_percent:.0f}% of {inputs.finished_recently} recent changes",
            "",
            inputs.failure_rate_percent,
        ),
        (
            RiskFactor.PROCEDURE_IMPACT,
            inputs.procedure_impact or "none declared",
            inputs.procedure_impact or "NONE",
            None,
        ),
        (
            RiskFactor.DOWNTIME,
            "yes" if inputs.requires_downtime else "no",
            "yes" if inputs.requires_downtime else "no",
            None,
        ),
    ]
    results: list[FactorResult] = []
    for key, shown, match, value in measured:
        rule = _rule_for(rules, key, match=match, value=value)
        results.append(
            FactorResult(
                key=str(key),
                label=labels[key],
                value=shown,
                points=rule.points if rule else 0,
                why=rule.explanation if rule else "No rule applies.",
            )
        )
    total = sum(r.points for r in results)
    level = RiskLevel.LOW
    if total >= thresholds.get(RiskLevel.CRITICAL, 10**9):
        level = RiskLevel.CRITICAL
    elif total >= thresholds.get(RiskLevel.HIGH, 10**9):
        level = RiskLevel.HIGH
    override = ""
    if inputs.priority == Priority.CRITICAL and level != RiskLevel.CRITICAL:
        level = RiskLevel.CRITICAL
        override = "Priority CRITICAL always makes the risk CRITICAL."
    return Assessment(
        score=total,
        level=str(level),
        category=str(CATEGORY_FOR_RISK[level]),
        factors=results,
        override=override,
    )


def gather_inputs(change: ChangeRequest, *, now: datetime | None = None) -> RiskInputs:
    now = now or timezone.now()
    component_ids = list(change.components.values_list("pk", flat=True))
    service_ids = list(change.services.values_list("pk", flat=True))
    start, end = change.proposed_start, change.proposed_end
    overlapping = (
        ChangeRequest.objects.filter(state__in=CONFLICT_STATES)
        .exclude(pk=change.pk)
        .filter(Q(components__in=component_ids) | Q(services__in=service_ids))
        .filter(proposed_start__lt=end)
        .distinct()
    )
    conflicts = sorted(
        c.public_id
        for c in overlapping.only("pk", "proposed_start", "window_minutes")
        if c.proposed_end > start
    )
    finished = (
        ChangeRequest.objects.filter(
            components__in=component_ids,
            executed_at__gte=now - FAILURE_LOOKBACK,
        )
        .exclude(outcome="")
        .exclude(pk=change.pk)
        .distinct()
    )
    total = finished.count()
    failed = finished.filter(outcome="FAILED").count()
    return RiskInputs(
        priority=change.priority,
        type=change.type,
        tenants=change.tenants.count(),
        services=len(service_ids),
        components=len(component_ids),
        window_minutes=change.window_minutes,
        blackout_exception=change.blackout_exception,
        lead_time_hours=(change.proposed_start - now).total_seconds() / 3600,
        conflicts=conflicts,
        failure_rate_percent=(100.0 * failed / total) if total else 0.0,
        finished_recently=total,
        procedure_impact=change.procedure_impact,
        requires_downtime=change.requires_downtime,
    )


def assess(change: ChangeRequest, *, now: datetime | None = None) -> Assessment:
    rules = list(RiskRule.objects.filter(active=True))
    thresholds = dict(RiskThreshold.objects.values_list("level", "min_score"))
    return score(gather_inputs(change, now=now), rules, thresholds)
