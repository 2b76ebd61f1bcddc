"""Document results: the post-implementation review and the corrective actions a refused
ratification needs."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from changes.models.requests import ChangeRequest
from portal.roles import Role


class PostImplementationReview(models.Model):
    """'Document results': the PIR a change needs before it closes."""

    class Outcome(models.TextChoices):
        SUCCESSFUL = "SUCCESSFUL", "Successful"
        PARTIAL = "PARTIAL", "Partially successful"
        FAILED = "FAILED", "Failed"

    change = models.OneToOneField(ChangeRequest, on_delete=models.CASCADE, related_name="review")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    notes = models.TextField()
    follow_ups = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"PIR {self.change.public_id}: {self.outcome}"


class CorrectiveAction(models.Model):
    """What was done about a refused retroactive ratification: a linked change that
    corrects it, or an incident note by HEAD_OF_SECURITY or COMPLIANCE. An urgent change
    whose ratification was refused cannot close without one."""

    class Kind(models.TextChoices):
        LINKED_CHANGE = "LINKED_CHANGE", "Corrective change"
        INCIDENT_NOTE = "INCIDENT_NOTE", "Incident note"

    change = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="corrective_actions"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    linked_change = models.ForeignKey(
        ChangeRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.TextField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_role = models.CharField(max_length=20, choices=Role.choices)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["recorded_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.change.public_id}"
