"""API tokens: one per pipeline or script, created by a person on their Preferences page.

Only a SHA-256 of the token is stored (the token is 190 random bits, so a slow hash adds
nothing but latency to every request); the person sees it once, when it is created. The
token's display id is random too and carries no part of the secret, so audit rows and
pages can name it. The rate limit's window lives on the row, so every web process and
host shares it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Scope(models.TextChoices):
    READ = "read", "Read: changes, approvals, windows, runs, the calendar, exports, the gate"
    WRITE = "write", "Write: file, edit, submit and cancel changes"
    DECIDE = "decide", "Decide approvals"


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    display_id = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # A fixed one-minute window: when it started, how many requests it counted, and
    # whether its first refusal was audited (later ones in the same window are not).
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_count = models.PositiveIntegerField(default=0)
    window_refusal_audited = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "-created_at"], name="api_token_mine")]

    def __str__(self) -> str:
        return f"API token {self.display_id} ({self.name})"

    @property
    def public_id(self) -> str:
        return self.display_id

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    def scope_labels(self) -> list[str]:
        return [Scope(s).name.lower() for s in self.scopes if s in Scope.values]
