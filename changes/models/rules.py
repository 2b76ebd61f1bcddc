"""The data risk assessment and the approval policy read; editable in the admin."""

from __future__ import annotations

from django.db import models

from changes.models.requests import Approval, Category, ChangeType, RiskLevel
from portal.roles import Role


class RiskFactor(models.TextChoices):
    PRIORITY = "priority", "Priority"
    TYPE = "type", "Change type"
    TENANTS = "tenants", "Tenants impacted"
    SERVICES = "services", "Services impacted"
    COMPONENTS = "components", "Components impacted"
    WINDOW = "window", "Window length (minutes)"
    BLACKOUT = "blackout", "Blackout exception"
    LEAD_TIME = "lead_time", "Lead time (hours)"
    CONFLICTS = "conflicts", "Conflicting changes"
    FAILURE_RATE = "failure_rate", "Recent failure rate (%)"
    PROCEDURE_IMPACT = "procedure_impact", "Procedure impact"
    DOWNTIME = "downtime", "Procedures need downtime"


class RiskRule(models.Model):
    """Points a factor adds to the risk score; editable in the admin.

    Categorical factors (priority, type, blackout) match ``match`` exactly. Numeric
    factors use the rule with the largest ``min_value`` not above the measured value.
    """

    factor = models.CharField(max_length=20, choices=RiskFactor.choices)
    match = models.CharField(max_length=20, blank=True)
    min_value = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    points = models.IntegerField()
    explanation = models.CharField(max_length=200)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["factor", "match", "min_value"]
        constraints = [
            models.UniqueConstraint(
                fields=["factor", "match", "min_value"], name="one_risk_rule_per_bucket"
            )
        ]

    def __str__(self) -> str:
        bucket = self.match or f">= {self.min_value}"
        return f"{self.get_factor_display()} {bucket}: {self.points:+d}"


class RiskThreshold(models.Model):
    """The score from which a level applies; below the HIGH threshold the risk is LOW."""

    level = models.CharField(
        max_length=10,
        choices=[(RiskLevel.HIGH, "High"), (RiskLevel.CRITICAL, "Critical")],
        unique=True,
    )
    min_score = models.IntegerField()

    def __str__(self) -> str:
        return f"{self.level} from {self.min_score}"


class ApprovalRule(models.Model):
    """Which roles must approve, per category and type; editable in the admin."""

    class Condition(models.TextChoices):
        ALWAYS = "ALWAYS", "Always"
        MULTI_TENANT = "MULTI_TENANT", "More than one tenant impacted"
        BLACKOUT_EXCEPTION = "BLACKOUT_EXCEPTION", "Blackout exception asked"

    category = models.CharField(max_length=10, choices=Category.choices)
    change_type = models.CharField(
        max_length=16, choices=ChangeType.choices, blank=True, help_text="Blank: any type."
    )
    condition = models.CharField(max_length=20, choices=Condition.choices, default="ALWAYS")
    role = models.CharField(max_length=20, choices=Role.choices)
    phase = models.CharField(
        max_length=12, choices=Approval.Phase.choices, default=Approval.Phase.PRE
    )
    due_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Before execution: from submission. Retroactive: after."
    )
    description = models.CharField(max_length=200)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["category", "phase", "role", "change_type"]

    def __str__(self) -> str:
        return self.description
