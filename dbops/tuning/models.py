"""Tuning sessions, their adjustments and every metric sample (part of the dbops app)."""

from __future__ import annotations

from django.db import models

from dbops.models.targets import DatabaseTarget


class TuningSession(models.Model):
    """The samples of one run: a system tuning loop, or the before/after observation a
    configuration change records around its apply."""

    class Purpose(models.TextChoices):
        TUNING = "TUNING", "System tuning"
        OBSERVATION = "OBSERVATION", "Before/after observation"

    class Resource(models.TextChoices):
        CPU = "CPU", "CPU"
        MEMORY = "MEMORY", "Memory"
        DISK = "DISK", "Disk"
        NETWORK = "NETWORK", "Network"

    class Status(models.TextChoices):
        RUNNING = "RUNNING", "Running"
        COMPLETED = "COMPLETED", "Completed"
        FAILED = "FAILED", "Failed"

    run = models.ForeignKey(
        "maintenance.ProcedureRun", on_delete=models.PROTECT, related_name="tuning_sessions"
    )
    target = models.ForeignKey(
        DatabaseTarget, on_delete=models.PROTECT, related_name="tuning_sessions"
    )
    change_set = models.ForeignKey(
        "dbops.ConfigurationChangeSet",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="observations",
    )
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    resource = models.CharField(max_length=8, choices=Resource.choices, default=Resource.CPU)
    metric = models.CharField(max_length=24, default="tps")
    higher_is_better = models.BooleanField(default=True)
    # The declared workload and the loop's settings (samples, thresholds, times).
    workload = models.JSONField(default=dict, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    host_metrics = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    baseline_median = models.FloatField(null=True, blank=True)
    final_median = models.FloatField(null=True, blank=True)
    improvement_percent = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.pk} on {self.target}"


class TuningAdjustment(models.Model):
    """One adjustment of a tuning session: a configuration change kept or rolled back."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        KEPT = "KEPT", "Kept"
        ROLLED_BACK = "ROLLED_BACK", "Rolled back"
        REFUSED = "REFUSED", "Refused by validation"
        FAILED = "FAILED", "Failed to apply"

    session = models.ForeignKey(TuningSession, on_delete=models.CASCADE, related_name="adjustments")
    position = models.PositiveSmallIntegerField()
    entries = models.JSONField(default=list)  # [[parameter, value], ...]
    change_set = models.ForeignKey(
        "dbops.ConfigurationChangeSet",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tuning_adjustments",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    reference_median = models.FloatField(null=True, blank=True)
    median = models.FloatField(null=True, blank=True)
    improvement_percent = models.FloatField(null=True, blank=True)
    stabilised = models.BooleanField(default=False)
    stabilise_seconds = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["session", "position"]

    def __str__(self) -> str:
        return ", ".join(f"{p} = {v}" for p, v in self.entries)


class TuningSample(models.Model):
    class Phase(models.TextChoices):
        BASELINE = "BASELINE", "Baseline"
        STABILISE = "STABILISE", "Stabilising"
        MEASURE = "MEASURE", "Measurement"
        FINAL = "FINAL", "Final verification"
        BEFORE = "BEFORE", "Before"
        AFTER = "AFTER", "After"

    session = models.ForeignKey(TuningSession, on_delete=models.CASCADE, related_name="samples")
    adjustment = models.ForeignKey(
        TuningAdjustment, on_delete=models.CASCADE, null=True, blank=True, related_name="samples"
    )
    phase = models.CharField(max_length=10, choices=Phase.choices)
    seq = models.PositiveIntegerField()
    taken_at = models.DateTimeField()
    seconds = models.FloatField()
    # PostgreSQL side: the workload's throughput and latency, and server counters.
    tps = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    cache_hit_ratio = models.FloatField(null=True, blank=True)
    temp_bytes = models.BigIntegerField(null=True, blank=True)
    checkpoints = models.IntegerField(null=True, blank=True)
    # Host side (psutil), when the worker runs beside the target.
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_percent = models.FloatField(null=True, blank=True)
    disk_read_bytes = models.BigIntegerField(null=True, blank=True)
    disk_write_bytes = models.BigIntegerField(null=True, blank=True)
    net_sent_bytes = models.BigIntegerField(null=True, blank=True)
    net_recv_bytes = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="tuning_sample_seq_once")
        ]

    def __str__(self) -> str:
        return f"{self.phase} #{self.seq}"
