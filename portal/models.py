from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class Tenant(models.Model):
    """A customer organisation whose data the platform holds."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    contact_email = models.EmailField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Tenant, on_delete=models.CASCADE)


class TenantGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Tenant, on_delete=models.CASCADE)


class Service(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    owner_email = models.EmailField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Component(models.Model):
    class Kind(models.TextChoices):
        APPLICATION = "APPLICATION", "Application"
        DATABASE = "DATABASE", "Database"
        INFRASTRUCTURE = "INFRASTRUCTURE", "Infrastructure"
        NETWORK = "NETWORK", "Network"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.APPLICATION)
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="components", null=True, blank=True
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AuditEvent(models.Model):
    """Append-only, hash-chained record of who did what, when, where, with what outcome.

    Rows are written only by ``portal.audit.audit_record`` inside the transaction of
    the action they record. On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE.
    """

    class Outcome(models.TextChoices):
        SUCCESS = "SUCCESS", "Success"
        DENIED = "DENIED", "Denied"
        FAILURE = "FAILURE", "Failure"

    sequence = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    username = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=32, blank=True)
    acting_for = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["sequence"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "sequence"]),
            # The audit trail's filters, each in the trail's order (newest first).
            models.Index(fields=["object_id", "-sequence"], name="audit_object_idx"),
            models.Index(Upper("username"), models.F("sequence").desc(), name="audit_username_idx"),
            models.Index(fields=["created_at"], name="audit_created_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"


class OutboxMessage(models.Model):
    """A task asked for in a transaction, published by the relay, marked done by the worker.

    ``due_at`` is when the relay next looks at the row: at once while unpublished, after
    the redelivery timeout once published (the broker may have lost it), after the
    task's time limit while a worker runs it, after a back-off when it raised. Done and
    given-up rows have none, so the relay's index holds only live rows.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    queue = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Publish attempts (each hand-over to the broker, failed or not).
    attempts = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    # Runs that raised; at OUTBOX_MAX_FAILURES the row is given up (and logged).
    failures = models.PositiveIntegerField(default=0)
    given_up_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The relay: due rows, soonest first.
            models.Index(
                fields=["due_at"], name="outbox_due", condition=models.Q(due_at__isnull=False)
            ),
            # /healthz: the oldest row not yet done.
            models.Index(
                fields=["created_at"],
                name="outbox_undone",
                condition=models.Q(done_at__isnull=True, given_up_at__isnull=True),
            ),
            # /healthz: how many were given up (a handful, kept for a person to look at).
            models.Index(
                fields=["given_up_at"],
                name="outbox_given_up",
                condition=models.Q(given_up_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        if self.done_at:
            state = "done"
        elif self.given_up_at:
            state = "given up"
        else:
            state = "published" if self.published_at else "pending"
        return f"{self.task_name} ({state})"


class Notification(models.Model):
    """An in-app notification; e-mails are sent alongside by the notification service."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    subject = models.CharField(max_length=255)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    # Makes "exactly once per (thing, recipient)" a database guarantee.
    dedup_key = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedup_key"],
                condition=~models.Q(dedup_key=""),
                name="notification_once_per_key",
            )
        ]

    def __str__(self) -> str:
        return self.subject


class WorkerHeartbeat(models.Model):
    hostname = models.CharField(max_length=255, unique=True)
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"


class UserPreference(models.Model):
    """Per-user display settings. Times are stored in UTC and shown in this zone."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    timezone = models.CharField(max_length=64, default="UTC")

    def __str__(self) -> str:
        return f"{self.user} ({self.timezone})"
