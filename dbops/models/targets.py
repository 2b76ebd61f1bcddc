"""PostgreSQL databases the portal watches and maintains, and the statistics it keeps."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from dbops import crypto
from portal.models import Component, Tenant


class SslMode(models.TextChoices):
    DISABLE = "disable", "disable"
    ALLOW = "allow", "allow"
    PREFER = "prefer", "prefer"
    REQUIRE = "require", "require"
    VERIFY_CA = "verify-ca", "verify-ca"
    VERIFY_FULL = "verify-full", "verify-full"


class DatabaseTarget(models.Model):
    """A PostgreSQL database the portal connects to. The password is stored encrypted
    (Fernet, FIELD_ENCRYPTION_KEY) and is never shown back, logged or audited."""

    name = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(
        default=5432, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    database = models.CharField(max_length=63)
    user = models.CharField(max_length=63)
    password_encrypted = models.TextField(blank=True, editable=False)
    sslmode = models.CharField(max_length=12, choices=SslMode.choices, default=SslMode.PREFER)
    # DISK_SPACE pre-checks use it when the worker cannot see the data directory.
    disk_capacity_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    connections_threshold_percent = models.PositiveSmallIntegerField(
        default=80, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    # Host facts the configuration rules and the PGTune suggestion judge settings by.
    memory_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="RAM of the database host, in bytes"
    )
    cpu_count = models.PositiveSmallIntegerField(null=True, blank=True)
    storage_type = models.CharField(
        max_length=4,
        blank=True,
        choices=[("ssd", "SSD"), ("hdd", "HDD"), ("san", "SAN"), ("nvme", "NVMe")],
    )
    expected_concurrent_users = models.PositiveIntegerField(null=True, blank=True)
    # For clusters the portal controls: a configuration change needing a restart then
    # carries an approved restart step that runs this command (no shell).
    restartable = models.BooleanField(default=False)
    restart_command = models.CharField(max_length=1000, blank=True)
    # The catalog entry a change names as its impact.
    component = models.OneToOneField(
        Component, on_delete=models.PROTECT, related_name="database_target"
    )
    # Tenants whose data the database holds; none means shared infrastructure.
    tenants = models.ManyToManyField(Tenant, related_name="database_targets", blank=True)
    is_active = models.BooleanField(default=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # The last "Test connection" report (never contains the password).
    last_check = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("dbops:target", args=[self.pk])

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    def set_password(self, raw: str) -> None:
        self.password_encrypted = crypto.encrypt(raw) if raw else ""

    def get_password(self) -> str:
        return crypto.decrypt(self.password_encrypted)


class QueryStatsSnapshot(models.Model):
    """pg_stat_statements and table statistics of one target at one moment."""

    class Trigger(models.TextChoices):
        SCHEDULED = "SCHEDULED", "Scheduled"
        MANUAL = "MANUAL", "Manual"
        PROPOSAL = "PROPOSAL", "Index proposal baseline"
        VERIFICATION = "VERIFICATION", "Verification"

    target = models.ForeignKey(DatabaseTarget, on_delete=models.CASCADE, related_name="snapshots")
    taken_at = models.DateTimeField()
    trigger = models.CharField(max_length=12, choices=Trigger.choices)
    statements_available = models.BooleanField(default=False)
    # pg_stat_statements_info.stats_reset: a reset between two snapshots voids a comparison.
    stats_reset = models.DateTimeField(null=True, blank=True)
    # Client connections at the time: the observed peak CONCURRENT_USERS is judged by.
    connections_used = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-taken_at", "-pk"]
        indexes = [models.Index(fields=["target", "-taken_at"])]

    def __str__(self) -> str:
        return f"{self.target} @ {self.taken_at:%Y-%m-%d %H:%M}"


class StatementStat(models.Model):
    """One normalised statement (pg_stat_statements, summed over users) in a snapshot."""

    snapshot = models.ForeignKey(
        QueryStatsSnapshot, on_delete=models.CASCADE, related_name="statements"
    )
    queryid = models.BigIntegerField()
    query = models.TextField()
    calls = models.BigIntegerField()
    total_exec_time = models.FloatField(help_text="milliseconds")
    mean_exec_time = models.FloatField(help_text="milliseconds")
    rows = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "queryid"], name="statement_once")
        ]

    def __str__(self) -> str:
        return f"{self.queryid}: {self.mean_exec_time:.1f} ms"


class TableStat(models.Model):
    """One user table (pg_stat_user_tables) in a snapshot."""

    snapshot = models.ForeignKey(
        QueryStatsSnapshot, on_delete=models.CASCADE, related_name="tables"
    )
    schema = models.CharField(max_length=63)
    name = models.CharField(max_length=63)
    n_live_tup = models.BigIntegerField()
    n_dead_tup = models.BigIntegerField()
    seq_scan = models.BigIntegerField()
    seq_tup_read = models.BigIntegerField()
    idx_scan = models.BigIntegerField(null=True)
    total_bytes = models.BigIntegerField()
    last_vacuum = models.DateTimeField(null=True)
    last_autovacuum = models.DateTimeField(null=True)
    last_analyze = models.DateTimeField(null=True)
    last_autoanalyze = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "schema", "name"], name="table_once")
        ]

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


class IndexSuggestion(models.Model):
    """An index suggestion proposed as a change, with the statement's baseline timing so
    that verification can compare its mean time before and after the index exists."""

    target = models.ForeignKey(
        DatabaseTarget, on_delete=models.PROTECT, related_name="index_suggestions"
    )
    change = models.OneToOneField(
        "changes.ChangeRequest", on_delete=models.PROTECT, related_name="index_suggestion"
    )
    schema = models.CharField(max_length=63)
    table = models.CharField(max_length=63)
    columns = models.JSONField()
    # The advisor's index: access method, keys (Key.to_json: column, function, opclass)
    # and, for a partial index, its WHERE (PartialPredicate.to_json).
    method = models.CharField(max_length=10, default="btree")
    keys = models.JSONField(default=list, blank=True)
    predicate = models.JSONField(null=True, blank=True)
    # HypoPG's proof at proposal time: proven, rejected or unverified, with the planner's
    # estimated cost of the statement without and with the hypothetical index.
    proof = models.CharField(max_length=12, default="unverified")
    proof_reason = models.TextField(blank=True)
    estimated_cost_before = models.FloatField(null=True, blank=True)
    estimated_cost_after = models.FloatField(null=True, blank=True)
    index_name = models.CharField(max_length=63)
    create_sql = models.TextField()
    drop_sql = models.TextField()
    queryid = models.BigIntegerField()
    query = models.TextField()
    baseline = models.ForeignKey(
        QueryStatsSnapshot, on_delete=models.PROTECT, related_name="baseline_for"
    )
    mean_exec_time_before = models.FloatField(help_text="milliseconds")
    calls_before = models.BigIntegerField()
    # Filled in by the verification once the index has been built.
    verification = models.ForeignKey(
        QueryStatsSnapshot,
        on_delete=models.PROTECT,
        related_name="verification_for",
        null=True,
        blank=True,
    )
    mean_exec_time_after = models.FloatField(null=True, blank=True, help_text="milliseconds")
    calls_after = models.BigIntegerField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.index_name} on {self.schema}.{self.table}"
