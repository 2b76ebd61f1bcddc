"""Risk assessment: each factor's points and each routing outcome (DESIGN §3.2)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from changes import risk
from changes.models import RiskRule, RiskThreshold, State
from tests.factories import ComponentFactory

pytestmark = pytest.mark.django_db

# A low-risk baseline: LOW FEATURE, one tenant/service/component, an hour, a week's notice.
BASE = risk.RiskInputs(
    priority="LOW",
    type="FEATURE",
    tenants=1,
    services=1,
    components=1,
    window_minutes=60,
    blackout_exception=False,
    lead_time_hours=200,
    conflicts=[],
    failure_rate_percent=0.0,
    finished_recently=0,
)
BASE_SCORE = 14  # 0 + 5 + 5 + 2 + 2 + 0 + 0 + 0 + 0 + 0

CASES = [
    # (id, changes to the baseline, factor checked, its points, level, category)
    ("baseline", {}, "priority", 0, "LOW", "STANDARD"),
    ("high priority", {"priority": "HIGH"}, "priority", 20, "LOW", "STANDARD"),
    (
        "critical priority always critical",
        {"priority": "CRITICAL"},
        "priority",
        40,
        "CRITICAL",
        "URGENT",
    ),
    ("security type", {"type": "SECURITY"}, "type", 15, "LOW", "STANDARD"),
    ("configuration type", {"type": "CONFIGURATION"}, "type", 10, "LOW", "STANDARD"),
    ("two tenants", {"tenants": 2}, "tenants", 15, "LOW", "STANDARD"),
    ("five tenants weigh most", {"tenants": 5}, "tenants", 35, "LOW", "STANDARD"),
    ("four services", {"services": 4}, "services", 10, "LOW", "STANDARD"),
    ("six components", {"components": 6}, "components", 10, "LOW", "STANDARD"),
    ("window over routine max", {"window_minutes": 300}, "window", 20, "LOW", "STANDARD"),
    ("window over two hours", {"window_minutes": 180}, "window", 5, "LOW", "STANDARD"),
    ("blackout exception", {"blackout_exception": True}, "blackout", 20, "LOW", "STANDARD"),
    ("short notice", {"lead_time_hours": 2}, "lead_time", 20, "LOW", "STANDARD"),
    ("three days notice", {"lead_time_hours": 80}, "lead_time", 3, "LOW", "STANDARD"),
    ("one conflict", {"conflicts": ["CHG-000001"]}, "conflicts", 15, "LOW", "STANDARD"),
    (
        "recent failures",
        {"failure_rate_percent": 60.0, "finished_recently": 5},
        "failure_rate",
        25,
        "LOW",
        "STANDARD",
    ),
    (
        "broad security change is high",
        {"priority": "HIGH", "type": "SECURITY", "tenants": 2},
        "tenants",
        15,
        "HIGH",
        "EMERGENCY",
    ),
    (
        "everything at once is critical",
        {
            "priority": "HIGH",
            "type": "SECURITY",
            "tenants": 3,
            "window_minutes": 300,
            "blackout_exception": True,
        },
        "blackout",
        20,
        "CRITICAL",
        "URGENT",
    ),
]


@pytest.fixture
def rules():
    return list(RiskRule.objects.filter(active=True)), dict(
        RiskThreshold.objects.values_list("level", "min_score")
    )


@pytest.mark.parametrize(
    ("changes", "factor", "points", "level", "category"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_it_scores_each_factor_and_routes_by_level(rules, changes, factor, points, level, category):
    assessment = risk.score(replace(BASE, **changes), *rules)
    by_key = {f.key: f for f in assessment.factors}
    assert by_key[factor].points == points
    assert by_key[factor].why  # every factor says why
    assert assessment.score == sum(f.points for f in assessment.factors)
    assert (assessment.level, assessment.category) == (level, category)


def test_the_baseline_adds_up_to_the_documented_score(rules):
    assert risk.score(BASE, *rules).score == BASE_SCORE


def test_a_score_exactly_at_the_high_threshold_is_high(rules):
    # MEDIUM 8 + PERFORMANCE 8 + two tenants 15 + service 2 + component 2 + 30 h notice 10
    inputs = replace(BASE, priority="MEDIUM", type="PERFORMANCE", tenants=2, lead_time_hours=30)
    assessment = risk.score(inputs, *rules)
    assert assessment.score == 45
    assert assessment.level == "HIGH"


def test_critical_priority_explains_its_override(rules):
    assessment = risk.score(replace(BASE, priority="CRITICAL"), *rules)
    assert assessment.override == "Priority CRITICAL always makes the risk CRITICAL."
    assert assessment.score < 80


def test_thresholds_are_data_the_admin_can_change(rules):
    RiskThreshold.objects.filter(level="HIGH").update(min_score=10)
    rules_now = list(RiskRule.objects.filter(active=True))
    thresholds = dict(RiskThreshold.objects.values_list("level", "min_score"))
    assert risk.score(BASE, rules_now, thresholds).level == "HIGH"


def test_it_finds_overlapping_changes_on_the_same_component(make_change, component):
    start = timezone.now() + timedelta(days=3)
    other = make_change(proposed_start=start + timedelta(minutes=30), state=State.SCHEDULED)
    make_change(proposed_start=start + timedelta(hours=5), state=State.SCHEDULED)  # later
    make_change(proposed_start=start, state=State.DRAFT)  # drafts never conflict
    unrelated = ComponentFactory(name="other-component")
    make_change(proposed_start=start, state=State.APPROVED, components=[unrelated])
    change = make_change(proposed_start=start, window_minutes=60)
    inputs = risk.gather_inputs(change)
    assert inputs.conflicts == [other.public_id]


def test_it_measures_the_recent_failure_rate_of_the_components(make_change):
    now = timezone.now()
    for outcome in ("FAILED", "SUCCESSFUL", "SUCCESSFUL", "FAILED"):
        done = make_change(state=State.CLOSED)
        done.outcome = outcome
        done.executed_at = now - timedelta(days=5)
        done.save(update_fields=["outcome", "executed_at"])
    old = make_change(state=State.CLOSED)
    old.outcome, old.executed_at = "FAILED", now - timedelta(days=200)
    old.save(update_fields=["outcome", "executed_at"])
    inputs = risk.gather_inputs(make_change())
    assert inputs.finished_recently == 4
    assert inputs.failure_rate_percent == 50.0


def test_submitting_stores_the_breakdown_on_the_change(submitted_change):
    assert submitted_change.risk_level == "LOW"
    assert submitted_change.category == "STANDARD"
    keys = [f["key"] for f in submitted_change.risk_factors]
    assert keys == [
        "priority",
        "type",
        "tenants",
        "services",
        "components",
        "window",
        "blackout",
        "lead_time",
        "conflicts",
        "failure_rate",
        "procedure_impact",
        "downtime",
    ]
