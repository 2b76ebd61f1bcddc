"""Export jobs, chain verifications and MFA recovery codes."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django_otp.models import Device


class JobStatus(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed"


class ExportJob(models.Model):
    """A large export built by the worker through the same exporter as the download
    views; the file is kept through Django storage and served only to its requester."""

    Status = JobStatus

    exporter = models.CharField(max_length=40)
    format = models.CharField(max_length=8)
    # The filters as submitted (name -> list of values), validated again by the worker.
    params = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    rows_done = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/", blank=True, max_length=300)
    filename = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["requested_by", "-created_at"], name="export_job_mine")]

    def __str__(self) -> str:
        return f"Export {self.pk} {self.exporter}.{self.format} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("compliance:export_job", kwargs={"pk": self.pk})

    @property
    def percent(self) -> int:
        if self.status == JobStatus.DONE:
            return 100
        if not self.rows_total:
            return 0
        return max(0, min(99, self.rows_done * 100 // self.rows_total))

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


class ChainVerification(models.Model):
    """One run of the audit chain's verification, started from the audit trail page."""

    Status = JobStatus

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    total = models.PositiveBigIntegerField(default=0)
    checked = models.PositiveBigIntegerField(default=0)
    intact = models.BooleanField(null=True)
    head_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64, blank=True)
    break_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    break_reason = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Chain verification {self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == JobStatus.DONE:
            return 100
        if not self.total:
            return 0
        return max(0, min(99, self.checked * 100 // self.total))

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


def recovery_code_hash(code: str) -> str:
    """Codes are stored only as hashes; typed with or without dashes, in any case."""
    normalised = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normalised.encode("ascii", "ignore")).hexdigest()


class RecoveryDevice(Device):
    """A user's single-use recovery codes, as a django-otp device: signing in with one
    verifies the session like a TOTP code, and uses the code up."""

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "recovery code set"

    def verify_token(self, token) -> bool:
        if not isinstance(token, str) or not 8 <= len(token) <= 40:
            return False
        # A conditional update: two sessions racing with one code get one success.
        used = self.codes.filter(code_hash=recovery_code_hash(token), used_at__isnull=True).update(
            used_at=timezone.now()
        )
        return used == 1

    def remaining(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "code_hash"], name="recovery_code_once")
        ]

    def __str__(self) -> str:
        return f"Recovery code of {self.device.user} ({'used' if self.used_at else 'unused'})"


class MfaEnrolment(get_user_model()):
    """Users as the admin's MFA page lists them: who enrolled, and the audited reset."""

    class Meta:
        proxy = True
        verbose_name = "MFA enrolment"
        verbose_name_plural = "MFA enrolments"
