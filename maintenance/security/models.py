"""Security updates (seed: SecurityUpdate, applySecurityUpdates): the component inventory
with its version history, OSV advisories and the exposures they cause, and the evidence a
run leaves (backups with their checksums, one result per component).

Part of the ``maintenance`` app: ``maintenance/models.py`` imports this module.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from maintenance.models.execution import ProcedureRun
from maintenance.security import osv
from portal.models import Component, Tenant

SEVERITY_CHOICES = [(s, s.title()) for s in osv.SEVERITY_RANK]


class ComponentExecutor(models.Model):
    """How the portal discovers a component's installed versions and updates it: one
    executor kind from the registry (maintenance.security.executors) and its settings."""

    component = models.OneToOneField(
        Component, on_delete=models.PROTECT, related_name="security_executor"
    )
    kind = models.CharField(max_length=40)
    config = models.JSONField(default=dict, blank=True)
    # Tenants whose data the component holds; none means shared infrastructure.
    tenants = models.ManyToManyField(Tenant, blank=True, related_name="+")
    is_active = models.BooleanField(default=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["component__name"]

    def __str__(self) -> str:
        return f"{self.component} ({self.kind})"

    def get_absolute_url(self) -> str:
        return reverse("maintenance:security:component", args=[self.pk])


class InstalledPackage(models.Model):
    """What discovery last saw installed in a component."""

    executor = models.ForeignKey(
        ComponentExecutor, on_delete=models.CASCADE, related_name="packages"
    )
    ecosystem = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=100)
    # Extension versions' order from the update paths, available versions, …
    metadata = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField()
    version_since = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["executor", "ecosystem", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["executor", "ecosystem", "name"], name="one_installed_package"
            )
        ]
        indexes = [models.Index(fields=["ecosystem", "name"])]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class VersionChange(models.Model):
    """History: a package appeared, changed version or went away."""

    class Source(models.TextChoices):
        DISCOVERY = "DISCOVERY", "Discovery"
        UPDATE = "UPDATE", "Security update"

    executor = models.ForeignKey(
        ComponentExecutor, on_delete=models.CASCADE, related_name="history"
    )
    ecosystem = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    version_before = models.CharField(max_length=100, blank=True)
    version_after = models.CharField(max_length=100, blank=True)
    observed_at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=Source.choices)
    run = models.ForeignKey(
        ProcedureRun, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-observed_at", "-pk"]
        indexes = [models.Index(fields=["executor", "-observed_at"])]

    def __str__(self) -> str:
        return f"{self.name}: {self.version_before or '—'} → {self.version_after or '—'}"


class Advisory(models.Model):
    """One OSV record as imported (the raw JSON is kept as evidence)."""

    class Source(models.TextChoices):
        UPLOAD = "UPLOAD", "Upload"
        DIRECTORY = "DIRECTORY", "Advisories directory"

    osv_id = models.CharField(max_length=100, unique=True)
    aliases = models.JSONField(default=list, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    details = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=SEVERITY_CHOICES)
    severity_rank = models.PositiveSmallIntegerField()
    cvss_vector = models.CharField(max_length=200, blank=True)
    cvss_score = models.DecimalField(max_digits=3, decimal_places=1, null=True, blank=True)
    published = models.DateTimeField(null=True, blank=True)
    modified = models.DateTimeField()
    withdrawn = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    source_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    raw = models.JSONField()
    imported_at = models.DateTimeField()
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-severity_rank", "osv_id"]
        verbose_name_plural = "advisories"

    def __str__(self) -> str:
        return self.osv_id

    def get_absolute_url(self) -> str:
        return reverse("maintenance:security:advisory", args=[self.pk])

    @property
    def title(self) -> str:
        return self.summary or (self.details[:120] if self.details else self.osv_id)


class AdvisoryPackage(models.Model):
    """One ``affected[]`` entry: a package and the versions the advisory covers."""

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="packages")
    ecosystem = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    ranges = models.JSONField(default=list, blank=True)
    versions = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["ecosystem", "name"])]

    def __str__(self) -> str:
        return f"{self.advisory_id}: {self.ecosystem}/{self.name}"


class Exposure(models.Model):
    """An installed package an open advisory covers; resolved once it no longer does."""

    executor = models.ForeignKey(
        ComponentExecutor, on_delete=models.CASCADE, related_name="exposures"
    )
    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="exposures")
    ecosystem = models.CharField(max_length=40)
    package = models.CharField(max_length=200)
    installed_version = models.CharField(max_length=100)
    severity = models.CharField(max_length=10, choices=SEVERITY_CHOICES)
    severity_rank = models.PositiveSmallIntegerField()
    fixed_version = models.CharField(max_length=100, blank=True)
    # The later of the advisory's publication and the vulnerable version's arrival.
    exposed_since = models.DateTimeField()
    detected_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-severity_rank", "exposed_since", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["executor", "advisory", "ecosystem", "package"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_exposure",
            )
        ]
        indexes = [
            # The compliance page's order and keyset, over open exposures only.
            models.Index(
                fields=["-severity_rank", "exposed_since", "id"],
                name="exposure_open_order",
                condition=models.Q(resolved_at__isnull=True),
            ),
            models.Index(fields=["executor", "resolved_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.advisory_id} on {self.package} {self.installed_version}"


def _backup_path(instance: ComponentBackup, filename: str) -> str:
    return f"security-backups/{instance.component_id}/{filename}"


class ComponentBackup(models.Model):
    """A backup taken before a patch: the file in Django storage, its SHA-256 and size.
    Retention deletes old files; the record stays."""

    component = models.ForeignKey(Component, on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(
        ProcedureRun, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=40)
    file = models.FileField(upload_to=_backup_path, max_length=500, blank=True)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["pruned_at", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} of {self.component} ({self.sha256[:12]}…)"


class UpdateResult(models.Model):
    """One component's outcome in a security-update run (seed: UpdateResult)."""

    class Status(models.TextChoices):
        SUCCESS = "SUCCESS", "Success"
        FAILED = "FAILED", "Failed"
        ROLLED_BACK = "ROLLED_BACK", "Failed, rolled back"

    class Step(models.TextChoices):
        PREPARE = "PREPARE", "Prepare"
        BACKUP = "BACKUP", "Backup"
        PATCH = "PATCH", "Patch"
        VERIFY = "VERIFY", "Verify"
        ROLLBACK = "ROLLBACK", "Rollback"

    run = models.ForeignKey(ProcedureRun, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField()
    component = models.ForeignKey(Component, on_delete=models.PROTECT, related_name="+")
    executor_kind = models.CharField(max_length=40)
    ecosystem = models.CharField(max_length=40)
    package = models.CharField(max_length=200)
    planned_from = models.CharField(max_length=100)
    target_version = models.CharField(max_length=100)
    version_before = models.CharField(max_length=100, blank=True)
    version_after = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices)
    failed_step = models.CharField(max_length=10, choices=Step.choices, blank=True)
    error = models.TextField(blank=True)
    output = models.TextField(blank=True)
    patches = models.JSONField(default=list, blank=True)
    backup = models.ForeignKey(
        ComponentBackup, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="one_result_per_update")
        ]

    def __str__(self) -> str:
        return f"{self.component} {self.package}: {self.status}"
