"""Maintenance windows (seed: MaintenanceWindow, MAINTENANCE_SCHEDULE): policies, freezes,
the windows themselves, emergency-window approvals, notices and calendar feed tokens."""

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
