"""Default risk rules, thresholds and approval policy (DESIGN §3.2).

Used by the data migration and, because transactional tests flush every table, by the
test suite to put them back. ``apps`` is the migration's app registry or the live one.
"""

from decimal import Decimal

# (factor, match, min_value, points, explanation)
RISK_RULES = [
    ("priority", "CRITICAL", None, 40, "Critical priority: the platform is at risk now."),
    ("priority", "HIGH", None, 20, "High priority changes carry more pressure and risk."),
    ("priority", "MEDIUM", None, 8, "Medium priority."),
    ("priority", "LOW", None, 0, "Low priority."),
    ("type", "SECURITY", None, 15, "Security changes touch controls protecting PHI."),
    ("type", "CONFIGURATION", None, 10, "Configuration changes can affect every request."),
    ("type", "PERFORMANCE", None, 8, "Performance changes alter query and resource behaviour."),
    ("type", "FEATURE", None, 5, "Feature changes are usually isolated."),
    ("tenants", "", Decimal("0"), 0, "No tenant impacted."),
    ("tenants", "", Decimal("1"), 5, "One tenant impacted."),
    ("tenants", "", Decimal("2"), 15, "Several tenants impacted: breadth weighs most."),
    ("tenants", "", Decimal("3"), 25, "Three or more tenants impacted."),
    ("tenants", "", Decimal("5"), 35, "Five or more tenants impacted."),
    ("services", "", Decimal("0"), 0, "No service named."),
    ("services", "", Decimal("1"), 2, "One service impacted."),
    ("services", "", Decimal("2"), 5, "Two or three services impacted."),
    ("services", "", Decimal("4"), 10, "Four or more services impacted."),
    ("components", "", Decimal("1"), 2, "One component impacted."),
    ("components", "", Decimal("3"), 5, "Three to five components impacted."),
    ("components", "", Decimal("6"), 10, "Six or more components impacted."),
    ("window", "", Decimal("0"), 0, "Short window."),
    ("window", "", Decimal("121"), 5, "Window longer than two hours."),
    ("window", "", Decimal("241"), 20, "Window longer than the routine maximum of 240 minutes."),
    ("blackout", "yes", None, 20, "Asks to work during a blackout period."),
    ("blackout", "no", None, 0, "Respects blackout periods."),
    ("lead_time", "", Decimal("0"), 20, "Less than a day's notice."),
    ("lead_time", "", Decimal("24"), 10, "Less than three days' notice."),
    ("lead_time", "", Decimal("72"), 3, "Less than a week's notice."),
    ("lead_time", "", Decimal("168"), 0, "A week or more of notice."),
    ("conflicts", "", Decimal("0"), 0, "No overlapping change on the same components or services."),
    ("conflicts", "", Decimal("1"), 15, "Overlaps another approved or scheduled change."),
    ("conflicts", "", Decimal("2"), 25, "Overlaps several approved or scheduled changes."),
    ("failure_rate", "", Decimal("0"), 0, "No recent failures on these components."),
    ("failure_rate", "", Decimal("10"), 5, "Some recent changes on these components failed."),
    ("failure_rate", "", Decimal("25"), 15, "A quarter or more of recent changes here failed."),
    ("failure_rate", "", Decimal("50"), 25, "Half or more of recent changes here failed."),
    ("procedure_impact", "NONE", None, 0, "No procedure declares an impact."),
    ("procedure_impact", "LOW", None, 0, "The procedures barely disturb the system."),
    ("procedure_impact", "MEDIUM", None, 5, "A procedure adds noticeable load or locks."),
    (
        "procedure_impact",
        "HIGH",
        None,
        15,
        "A procedure takes exclusive locks or rewrites tables (e.g. VACUUM FULL).",
    ),
    ("downtime", "yes", None, 15, "A procedure needs downtime of what it works on."),
    ("downtime", "no", None, 0, "No procedure needs downtime."),
]
THRESHOLDS = [("HIGH", 45), ("CRITICAL", 80)]

STD = "STANDARD"
EMG = "EMERGENCY"
URG = "URGENT"
# (category, change_type, condition, role, phase, due_hours, description)
APPROVAL_RULES = [
    (
        STD,
        "SECURITY",
        "ALWAYS",
        "SECURITY",
        "PRE",
        72,
        "Standard SECURITY change: Security approves.",
    ),
    (
        STD,
        "FEATURE",
        "ALWAYS",
        "ENGINEERING",
        "PRE",
        72,
        "Standard FEATURE change: Engineering approves.",
    ),
    (
        STD,
        "PERFORMANCE",
        "ALWAYS",
        "ENGINEERING",
        "PRE",
        72,
        "Standard PERFORMANCE change: Engineering approves.",
    ),
    (
        STD,
        "CONFIGURATION",
        "ALWAYS",
        "OPERATIONS",
        "PRE",
        72,
        "Standard CONFIGURATION change: Operations approves.",
    ),
    (
        STD,
        "",
        "MULTI_TENANT",
        "COMPLIANCE",
        "PRE",
        72,
        "More than one tenant impacted: Compliance approves.",
    ),
    (
        STD,
        "",
        "BLACKOUT_EXCEPTION",
        "COMPLIANCE",
        "PRE",
        72,
        "Blackout exception asked: Compliance approves.",
    ),
    (EMG, "", "ALWAYS", "SECURITY", "PRE", 4, "Immediate Review: Security within 4 hours."),
    (EMG, "", "ALWAYS", "ENGINEERING", "PRE", 4, "Immediate Review: Engineering within 4 hours."),
    (EMG, "", "ALWAYS", "OPERATIONS", "PRE", 4, "Immediate Review: Operations within 4 hours."),
    (
        EMG,
        "",
        "MULTI_TENANT",
        "COMPLIANCE",
        "PRE",
        4,
        "More than one tenant impacted: Compliance within 4 hours.",
    ),
    (
        EMG,
        "",
        "BLACKOUT_EXCEPTION",
        "COMPLIANCE",
        "PRE",
        4,
        "Blackout exception asked: Compliance within 4 hours.",
    ),
    (URG, "", "ALWAYS", "CTO", "PRE", 1, "Emergency Committee: the CTO within 1 hour."),
    (
        URG,
        "",
        "ALWAYS",
        "HEAD_OF_SECURITY",
        "PRE",
        1,
        "Emergency Committee: the Head of Security within 1 hour.",
    ),
    (
        URG,
        "",
        "ALWAYS",
        "SECURITY",
        "RETROACTIVE",
        72,
        "Retroactive review by Security within 72 hours of execution.",
    ),
    (
        URG,
        "",
        "ALWAYS",
        "ENGINEERING",
        "RETROACTIVE",
        72,
        "Retroactive review by Engineering within 72 hours of execution.",
    ),
    (
        URG,
        "",
        "ALWAYS",
        "OPERATIONS",
        "RETROACTIVE",
        72,
        "Retroactive review by Operations within 72 hours of execution.",
    ),
    (
        URG,
        "",
        "ALWAYS",
        "COMPLIANCE",
        "RETROACTIVE",
        72,
        "Retroactive review by Compliance within 72 hours of execution.",
    ),
]


def seed(apps) -> None:
    RiskRule = apps.get_model("changes", "RiskRule")
    RiskThreshold = apps.get_model("changes", "RiskThreshold")
    ApprovalRule = apps.get_model("changes", "ApprovalRule")
    for factor, match, min_value, points, explanation in RISK_RULES:
        RiskRule.objects.get_or_create(
            factor=factor,
            match=match,
            min_value=min_value,
            defaults={"points": points, "explanation": explanation},
        )
    for level, min_score in THRESHOLDS:
        RiskThreshold.objects.get_or_create(level=level, defaults={"min_score": min_score})
    for category, change_type, condition, role, phase, due, description in APPROVAL_RULES:
        ApprovalRule.objects.get_or_create(
            category=category,
            change_type=change_type,
            condition=condition,
            role=role,
            phase=phase,
            defaults={"due_hours": due, "description": description},
        )


def unseed(apps) -> None:
    for name in ("RiskRule", "RiskThreshold", "ApprovalRule"):
        apps.get_model("changes", name).objects.all().delete()


def missing(apps) -> bool:
    return not (
        apps.get_model("changes", "ApprovalRule").objects.exists()
        and apps.get_model("changes", "RiskThreshold").objects.exists()
    )
