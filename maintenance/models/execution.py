"""Execution tracking (seed: MaintenanceExecution, trackMaintenance): changes placed in
windows, a window's execution and its issues, procedures and their runs and steps."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django_fsm import FSMField, transition

from changes.models import ChangeRequest
from maintenance.models.windows import MaintenanceWindow
from portal.fsm import StateMachineMixin


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
