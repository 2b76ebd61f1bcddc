"""Maintenance windows, blackout rules, execution tracking and procedure runs.

Seed: MaintenanceWindow, MAINTENANCE_SCHEDULE, MaintenanceExecution, trackMaintenance.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from changes.models import ChangeRequest
from portal.roles import Role


class WindowType(models.TextChoices):
    ROUTINE = "ROUTINE", "Routine"
    EMERGENCY = "EMERGENCY", "Emergency"


class MaintenancePolicy(models.Model):
    """Seed MAINTENANCE_SCHEDULE, one row per window type, editable in the admin."""

    type = models.CharField(max_length=10, choices=WindowType.choices, unique=True)
    rrule = models.CharField(
        max_length=200, blank=True, help_text="RFC 5545 recurrence of routine windows (UTC)."
    )
    default_duration_minutes = models.PositiveIntegerField()
    max_duration_minutes = models.PositiveIntegerField()
    timezone = models.CharField(max_length=64, default="UTC")
    notification_offsets = models.JSONField(
        default=list, help_text="Minutes before start at which stakeholders are notified."
    )
    min_notice_minutes = models.PositiveIntegerField(default=0)
    approver_roles = models.JSONField(default=list, blank=True)
    end_of_month_days = models.PositiveIntegerField(
        default=3, help_text="END_OF_MONTH blackout: the last N calendar days of each month."
    )
    holiday_country = models.CharField(max_length=10, blank=True, default="US")
    holiday_subdivision = models.CharField(max_length=10, blank=True)
    holiday_market = models.CharField(
        max_length=10, blank=True, help_text="A financial calendar instead, e.g. NYSE."
    )
    generate_weeks = models.PositiveIntegerField(default=8)

    class Meta:
        verbose_name_plural = "maintenance policies"

    def __str__(self) -> str:
        return f"{self.get_type_display()} policy"


class BlackoutPeriod(models.Model):
    """A freeze added by hand (inclusive dates, UTC)."""

    start_date = models.DateField()
    end_date = models.DateField()
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start_date"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_date__gte=models.F("start_date")),
                name="blackout_end_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.start_date}–{self.end_date}: {self.reason}"


class MaintenanceWindow(models.Model):
    class Status(models.TextChoices):
        PENDING_APPROVAL = "PENDING_APPROVAL", "Awaiting approval"
        PLANNED = "PLANNED", "Planned"
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        COMPLETED = "COMPLETED", "Completed"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"
        REJECTED = "REJECTED", "Rejected"

    type = models.CharField(max_length=10, choices=WindowType.choices)
    start = models.DateTimeField(db_index=True)
    duration_minutes = models.PositiveIntegerField()
    timezone = models.CharField(max_length=64, default="UTC")
    notification_offsets = models.JSONField(default=list)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    title = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    subscribers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="subscribed_windows"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requested_windows",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.UniqueConstraint(
                fields=["type", "start"],
                condition=models.Q(type="ROUTINE"),
                name="one_routine_window_per_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} window {self.start:%Y-%m-%d %H:%M} UTC"

    def get_absolute_url(self) -> str:
        return reverse("maintenance:window", kwargs={"pk": self.pk})

    @property
    def end(self):
        return self.start + timedelta(minutes=self.duration_minutes)

    def is_open(self, now=None) -> bool:
        now = now or timezone.now()
        return self.start <= now < self.end

    @property
    def label(self) -> str:
        return self.title or str(self)


class WindowApproval(models.Model):
    """An emergency window is approved by CTO and HEAD_OF_SECURITY before anything runs."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Rejected"

    window = models.ForeignKey(
        MaintenanceWindow, on_delete=models.CASCADE, related_name="approvals"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    comments = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["window", "role"], name="one_window_approval_per_role")
        ]

    def __str__(self) -> str:
        return f"{self.window} {self.role} {self.status}"


class ScheduledChange(models.Model):
    """A change placed in a window; changes in a window run one after another."""

    window = models.ForeignKey(
        MaintenanceWindow, on_delete=models.PROTECT, related_name="scheduled_changes"
    )
    change = models.OneToOneField(ChangeRequest, on_delete=models.CASCADE, related_name="slot")
    position = models.PositiveIntegerField()
    planned_start = models.DateTimeField()
    planned_minutes = models.PositiveIntegerField()
    scheduled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    scheduled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["window", "position"]

    def __str__(self) -> str:
        return f"{self.change.public_id} in {self.window}"

    @property
    def planned_end(self):
        return self.planned_start + timedelta(minutes=self.planned_minutes)


class MaintenanceExecution(models.Model):
    """Seed MaintenanceExecution: status, timeline, procedure counts and issues."""

    class Status(models.TextChoices):
        PLANNED = "PLANNED", "Planned"
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        COMPLETED = "COMPLETED", "Completed"
        FAILED = "FAILED", "Failed"

    window = models.OneToOneField(
        MaintenanceWindow, on_delete=models.PROTECT, related_name="execution"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLANNED)
    planned_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    procedures_total = models.PositiveIntegerField(default=0)
    procedures_completed = models.PositiveIntegerField(default=0)
    procedures_failed = models.PositiveIntegerField(default=0)
    report = models.FileField(upload_to="reports/", blank=True)
    report_generated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Execution of {self.window}: {self.status}"


class MaintenanceIssue(models.Model):
    class Kind(models.TextChoices):
        OVERRUN = "OVERRUN", "Overrun"
        PROCEDURE_FAILED = "PROCEDURE_FAILED", "Procedure failed"
        INTERRUPTED = "INTERRUPTED", "Run interrupted"
        VERIFICATION_FAILED = "VERIFICATION_FAILED", "Verification failed"
        OTHER = "OTHER", "Other"

    execution = models.ForeignKey(
        MaintenanceExecution, on_delete=models.CASCADE, related_name="issues"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    message = models.TextField()
    change = models.ForeignKey(
        ChangeRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"


class ChangeProcedure(models.Model):
    """A procedure a change will run, with its validated parameters."""

    change = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="procedures")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["change", "position"]

    def __str__(self) -> str:
        return f"{self.change.public_id} #{self.position} {self.kind}"

    @property
    def procedure(self):
        from maintenance.procedures import registry

        return registry.get(self.kind)

    @property
    def summary(self) -> str:
        return self.procedure.summary(self.params)


class ProcedureRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        QUEUED = "QUEUED", "Queued"
        RUNNING = "RUNNING", "Running"
        WAITING = "WAITING", "Waiting for an operator"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"
        ROLLED_BACK = "ROLLED_BACK", "Failed, rolled back"
        SKIPPED = "SKIPPED", "Skipped"
        INTERRUPTED = "INTERRUPTED", "Interrupted"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.ROLLED_BACK, Status.SKIPPED)

    procedure = models.ForeignKey(ChangeProcedure, on_delete=models.PROTECT, related_name="runs")
    change = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT, related_name="runs")
    execution = models.ForeignKey(
        MaintenanceExecution, on_delete=models.PROTECT, related_name="runs"
    )
    attempt = models.PositiveIntegerField(default=1)
    idempotency_key = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    output = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    progress = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["execution", "change", "procedure__position", "attempt"]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.procedure}: {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class StepRun(models.Model):
    class Kind(models.TextChoices):
        PRECHECK = "PRECHECK", "Pre-check"
        STEP = "STEP", "Step"
        VERIFY = "VERIFY", "Verification"
        ROLLBACK = "ROLLBACK", "Rollback"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        RUNNING = "RUNNING", "Running"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"
        SKIPPED = "SKIPPED", "Skipped"

    run = models.ForeignKey(ProcedureRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    output = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    evidence = models.TextField(blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="one_step_per_position")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.status}"


def _new_token() -> str:
    return secrets.token_urlsafe(32)


class CalendarFeedToken(models.Model):
    """The secret in a user's iCalendar feed URL; revoking it breaks the old URL."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_tokens"
    )
    token = models.CharField(max_length=64, unique=True, default=_new_token)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Calendar feed of {self.user} ({'revoked' if self.revoked_at else 'active'})"


class WindowNotice(models.Model):
    """One row per (window, offset, recipient): the pre-start notice went out, once."""

    window = models.ForeignKey(MaintenanceWindow, on_delete=models.CASCADE, related_name="notices")
    offset_minutes = models.IntegerField()
    recipient = models.CharField(max_length=255, help_text="user:<id> or email:<address>")
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["window", "offset_minutes", "recipient"], name="one_notice_per_offset"
            )
        ]

    def __str__(self) -> str:
        return f"{self.window} −{self.offset_minutes} min → {self.recipient}"


# Security updates live in their own package; importing it makes its models this app's.
from maintenance.security import models as _security_models  # noqa: E402, F401
