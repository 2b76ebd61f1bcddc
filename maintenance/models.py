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
from django_fsm import FSMField, transition
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from changes.models import ApprovalBase, ChangeRequest
from portal.fsm import StateMachineMixin


class WindowType(models.TextChoices):
    ROUTINE = "ROUTINE", "Routine"
    EMERGENCY = "EMERGENCY", "Emergency"


class Cutoff(models.TextChoices):
    """What happens to a procedure still running when its window ends (as AWS
    Maintenance Windows' cutoff behaviour)."""

    CONTINUE = "CONTINUE", "Continue, record an overrun and notify"
    CANCEL = "CANCEL", "Cancel the running work and roll back"


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
    cutoff_behavior = models.CharField(
        max_length=10, choices=Cutoff.choices, default=Cutoff.CONTINUE
    )

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


class MaintenanceWindow(StateMachineMixin, models.Model):
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
    status = FSMField(max_length=20, choices=Status.choices, default=Status.PLANNED, protected=True)
    title = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    cutoff_behavior = models.CharField(
        max_length=10, choices=Cutoff.choices, default=Cutoff.CONTINUE
    )
    subscribers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="subscribed_windows"
    )
    # Seed MaintenanceWindow.notifications.stakeholders: named here besides the ones
    # derived from the changes in it (requesters, approvers, operators, subscribers).
    stakeholder_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="stakeholder_windows"
    )
    stakeholder_roles = models.JSONField(default=list, blank=True)
    stakeholder_emails = models.JSONField(default=list, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requested_windows",
    )
    # The urgent or emergency change an emergency window was asked for: its committee's
    # decisions also decide the window.
    for_change = models.ForeignKey(
        ChangeRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="emergency_windows",
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

    # --- transitions: they only move state; services do everything else ----------
    @transition(field=status, source=Status.PENDING_APPROVAL, target=Status.PLANNED)
    def approve(self) -> None:
        pass

    @transition(field=status, source=Status.PENDING_APPROVAL, target=Status.REJECTED)
    def reject(self) -> None:
        pass

    @transition(field=status, source=Status.PLANNED, target=Status.IN_PROGRESS)
    def start_execution(self) -> None:
        pass

    @transition(field=status, source=Status.IN_PROGRESS, target=Status.COMPLETED)
    def complete(self) -> None:
        pass

    @transition(field=status, source=Status.IN_PROGRESS, target=Status.FAILED)
    def fail(self) -> None:
        pass

    @transition(
        field=status, source=[Status.PENDING_APPROVAL, Status.PLANNED], target=Status.CANCELLED
    )
    def cancel(self) -> None:
        pass


class WindowApproval(ApprovalBase):
    """An emergency window is approved by CTO and HEAD_OF_SECURITY before anything runs,
    through the same decision engine, permissions and rules as change approvals."""

    window = models.ForeignKey(
        MaintenanceWindow, on_delete=models.CASCADE, related_name="approvals"
    )

    permission = "maintenance.decide_windowapproval"

    class Meta:
        ordering = ["role"]
        constraints = [
            models.UniqueConstraint(fields=["window", "role"], name="one_window_approval_per_role")
        ]
        permissions = [("decide_windowapproval", "Can decide this window approval")]

    def __str__(self) -> str:
        return f"{self.window} {self.role} {self.status}"

    def get_absolute_url(self) -> str:
        return self.window.get_absolute_url()

    @property
    def subject(self) -> MaintenanceWindow:
        return self.window


class WindowApprovalUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(WindowApproval, on_delete=models.CASCADE)


class WindowApprovalGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(WindowApproval, on_delete=models.CASCADE)


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


class MaintenanceExecution(StateMachineMixin, models.Model):
    """Seed MaintenanceExecution: status, timeline, procedure counts and issues."""

    class Status(models.TextChoices):
        PLANNED = "PLANNED", "Planned"
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        COMPLETED = "COMPLETED", "Completed"
        FAILED = "FAILED", "Failed"

    window = models.OneToOneField(
        MaintenanceWindow, on_delete=models.PROTECT, related_name="execution"
    )
    status = FSMField(max_length=12, choices=Status.choices, default=Status.PLANNED, protected=True)
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
    # The audit chain head when the report was generated: the report's own evidence.
    report_chain_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    report_chain_head = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"Execution of {self.window}: {self.status}"

    @transition(field=status, source=Status.PLANNED, target=Status.IN_PROGRESS)
    def begin(self) -> None:
        pass

    @transition(field=status, source=Status.IN_PROGRESS, target=Status.COMPLETED)
    def complete(self) -> None:
        pass

    @transition(field=status, source=Status.IN_PROGRESS, target=Status.FAILED)
    def fail(self) -> None:
        pass


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


class RunStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    WAITING = "WAITING", "Waiting for an operator"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    ROLLED_BACK = "ROLLED_BACK", "Failed, rolled back"
    CANCELLED = "CANCELLED", "Cancelled at the window's end"
    SKIPPED = "SKIPPED", "Skipped"
    INTERRUPTED = "INTERRUPTED", "Interrupted"


class ProcedureRun(StateMachineMixin, models.Model):
    Status = RunStatus

    # Each group of statuses is named once; counts, the engine and pages use these.
    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.WAITING)
    FINISHED = (
        Status.SUCCEEDED,
        Status.FAILED,
        Status.ROLLED_BACK,
        Status.CANCELLED,
        Status.SKIPPED,
    )
    # A procedure that did not succeed: it counts as failed in the execution's totals.
    UNSUCCESSFUL = (
        Status.FAILED,
        Status.ROLLED_BACK,
        Status.CANCELLED,
        Status.SKIPPED,
        Status.INTERRUPTED,
    )
    # Waiting for a person (retry or abandon): the change does not move on by itself.
    NEEDS_DECISION = (Status.INTERRUPTED,)

    procedure = models.ForeignKey(ChangeProcedure, on_delete=models.PROTECT, related_name="runs")
    change = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT, related_name="runs")
    execution = models.ForeignKey(
        MaintenanceExecution, on_delete=models.PROTECT, related_name="runs"
    )
    attempt = models.PositiveIntegerField(default=1)
    idempotency_key = models.CharField(max_length=100, unique=True)
    status = FSMField(max_length=12, choices=Status.choices, default=Status.PENDING, protected=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    output = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    # Live progress of the statement working now (pg_stat_progress_*): phase, blocks.
    progress_detail = models.JSONField(default=dict, blank=True)
    # A request to stop the work at this moment: the window's cutoff (CANCEL policy) or
    # the worker stopping. The run's own heartbeat thread reads it and ends the work.
    stop_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(
        max_length=12,
        blank=True,
        choices=[("CUTOFF", "Window cutoff"), ("WORKER_STOP", "Worker stopping")],
    )

    class Meta:
        ordering = ["execution", "change", "procedure__position", "attempt"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_reaper_idx")]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.procedure}: {self.status}"

    def get_absolute_url(self) -> str:
        return reverse("maintenance:run", kwargs={"pk": self.pk})

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    # --- transitions ------------------------------------------------------------------
    @transition(field=status, source=Status.PENDING, target=Status.QUEUED)
    def queue(self) -> None:
        pass

    @transition(field=status, source=Status.QUEUED, target=Status.RUNNING)
    def claim(self) -> None:
        pass

    @transition(field=status, source=Status.RUNNING, target=Status.WAITING)
    def wait_for_operator(self) -> None:
        pass

    @transition(field=status, source=[Status.RUNNING, Status.WAITING], target=Status.SUCCEEDED)
    def succeed(self) -> None:
        pass

    @transition(
        field=status,
        source=[Status.RUNNING, Status.WAITING, Status.INTERRUPTED],
        target=Status.FAILED,
    )
    def fail(self) -> None:
        pass

    @transition(field=status, source=Status.RUNNING, target=Status.ROLLED_BACK)
    def roll_back(self) -> None:
        pass

    @transition(field=status, source=[Status.RUNNING, Status.WAITING], target=Status.CANCELLED)
    def cancel(self) -> None:
        pass

    @transition(field=status, source=[Status.PENDING, Status.QUEUED], target=Status.SKIPPED)
    def skip(self) -> None:
        pass

    @transition(field=status, source=[Status.RUNNING, Status.WAITING], target=Status.INTERRUPTED)
    def interrupt(self) -> None:
        pass


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
    # What the step started, so nothing it started outlives its worker unowned: a
    # script's process group and host, a database statement's backend pid.
    process_host = models.CharField(max_length=255, blank=True)
    process_pid = models.PositiveIntegerField(null=True, blank=True)
    process_group = models.PositiveIntegerField(null=True, blank=True)
    backend_pid = models.PositiveIntegerField(null=True, blank=True)

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
