"""Change sets, their entries and the validation rules (part of the dbops app: imported
at the end of ``dbops/models.py``)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from dbops.configuration import rules as checks
from dbops.configuration import units
from dbops.models.targets import DatabaseTarget

__all__ = [
    "ConfigurationChange",
    "ConfigurationChangeSet",
    "ConfigurationRule",
    "TuningAdjustment",
    "TuningSample",
    "TuningSession",
]


class ConfigurationRule(models.Model):
    """One rule of the seed's CONFIG_VALIDATION, as data an admin edits (audited)."""

    class Check(models.TextChoices):
        RANGE = checks.RANGE, "Range of one parameter"
        SYSTEM_MEMORY = checks.SYSTEM_MEMORY, "Dependency: the host's RAM is known"
        CONCURRENT_USERS = checks.CONCURRENT_USERS, "Dependency: concurrent users are known"
        TOTAL_MEMORY_LIMIT = checks.TOTAL_MEMORY_LIMIT, "Constraint: total memory within RAM"
        PERFORMANCE_REQUIREMENTS = (
            checks.PERFORMANCE_REQUIREMENTS,
            "Constraint: connections cover the users",
        )

    code = models.CharField(max_length=64, unique=True)
    # The seed keys CONFIG_VALIDATION by component kind; DATABASE is the only one so far.
    scope = models.CharField(max_length=16, default="DATABASE", editable=False)
    rule_type = models.CharField(max_length=32, choices=Check.choices)
    parameter = models.CharField(max_length=63, blank=True)
    minimum = models.CharField(
        max_length=32, blank=True, help_text="With a unit where the parameter has one: 1024MB"
    )
    maximum = models.CharField(max_length=32, blank=True)
    factor = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="TOTAL_MEMORY_LIMIT: work_mem allocations counted per connection (k)",
    )
    share_percent = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="TOTAL_MEMORY_LIMIT: the share of RAM the total may use",
    )
    headroom_percent = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(1000)],
        help_text="PERFORMANCE_REQUIREMENTS: connections above the concurrent users",
    )
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rule_type", "code"]

    def __str__(self) -> str:
        return self.code

    @property
    def kind(self) -> str:
        return checks.KIND_OF.get(self.rule_type, "RULE")

    def clean(self) -> None:
        if self.rule_type == self.Check.RANGE:
            if not self.parameter:
                raise ValidationError({"parameter": "A range rule names its parameter."})
            if not (self.minimum or self.maximum):
                raise ValidationError("A range rule needs a minimum, a maximum or both.")
        for name in ("minimum", "maximum"):
            value = getattr(self, name)
            if value:
                try:
                    units.split(value)
                except units.UnitError as exc:
                    raise ValidationError({name: exc.message}) from None
        self.parameter = self.parameter.strip().lower()

    def spec(self) -> checks.RuleSpec:
        return checks.RuleSpec(
            code=self.code,
            check=self.rule_type,
            parameter=self.parameter,
            minimum=self.minimum,
            maximum=self.maximum,
            factor=Decimal(self.factor) if self.factor is not None else None,
            share_percent=self.share_percent,
            headroom_percent=self.headroom_percent,
            description=self.description,
        )


class ConfigurationChangeSet(models.Model):
    """The entries one change applies together, or a tuning adjustment's entries."""

    class Status(models.TextChoices):
        PROPOSED = "PROPOSED", "Proposed"
        APPLYING = "APPLYING", "Applying"
        APPLIED = "APPLIED", "Applied"
        ROLLED_BACK = "ROLLED_BACK", "Rolled back"
        FAILED = "FAILED", "Failed (restore incomplete)"

    class Source(models.TextChoices):
        MANUAL = "MANUAL", "Proposed by hand"
        SUGGESTION = "SUGGESTION", "PGTune-style suggestion"
        TUNING = "TUNING", "System tuning adjustment"

    class Restart(models.TextChoices):
        NOT_NEEDED = "NOT_NEEDED", "Not needed"
        PENDING = "PENDING", "Pending restart"
        DONE = "DONE", "Restarted"

    target = models.ForeignKey(
        DatabaseTarget, on_delete=models.PROTECT, related_name="configuration_sets"
    )
    change = models.ForeignKey(
        "changes.ChangeRequest", on_delete=models.PROTECT, related_name="configuration_sets"
    )
    run = models.ForeignKey(
        "maintenance.ProcedureRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="configuration_sets",
    )
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.MANUAL)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROPOSED)
    restart_required = models.BooleanField(default=False)
    restart_status = models.CharField(
        max_length=12, choices=Restart.choices, default=Restart.NOT_NEEDED
    )
    # Set-level verdicts (dependencies and constraints) when proposed and at apply.
    verdicts = models.JSONField(default=list, blank=True)
    apply_verdicts = models.JSONField(default=list, blank=True)
    # pg_settings and pg_file_settings as they were before the apply.
    snapshot = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["target", "-created_at"], name="configset_target_idx")]

    def __str__(self) -> str:
        return f"Configuration set {self.pk} on {self.target}"

    def get_absolute_url(self) -> str:
        return reverse("dbops:configuration_set", args=[self.pk])


class ConfigurationChange(models.Model):
    """The seed's ConfigurationChange: one parameter of a set."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        APPLIED = "APPLIED", "Applied"
        PENDING_RESTART = "PENDING_RESTART", "Applied, pending restart"
        ROLLED_BACK = "ROLLED_BACK", "Rolled back"
        FAILED = "FAILED", "Failed"

    change_set = models.ForeignKey(
        ConfigurationChangeSet, on_delete=models.CASCADE, related_name="entries"
    )
    position = models.PositiveSmallIntegerField()
    parameter = models.CharField(max_length=63)
    # As the server shows it (SHOW), when proposed and read again at apply.
    current_value = models.CharField(max_length=1024, blank=True)
    value_at_apply = models.CharField(max_length=1024, blank=True)
    new_value = models.CharField(max_length=1024)
    # The new value as pg_settings.setting will show it (in the setting's unit).
    normalized = models.CharField(max_length=1024, blank=True)
    unit = models.CharField(max_length=8, blank=True)
    vartype = models.CharField(max_length=8, blank=True)
    context = models.CharField(max_length=20, blank=True)
    restart_required = models.BooleanField(default=False)
    verdicts = models.JSONField(default=list, blank=True)
    apply_verdicts = models.JSONField(default=list, blank=True)
    # The rollback: the postgresql.auto.conf value to put back, or RESET when the
    # parameter had no entry there.
    rollback_value = models.CharField(max_length=1024, blank=True)
    rollback_reset = models.BooleanField(default=True)
    applied_value = models.CharField(max_length=1024, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["change_set", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["change_set", "parameter"], name="configuration_parameter_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.parameter}: {self.current_value} → {self.new_value}"

    @property
    def rollback_text(self) -> str:
        return "RESET" if self.rollback_reset else self.rollback_value


from dbops.tuning.models import TuningAdjustment, TuningSample, TuningSession  # noqa: E402
