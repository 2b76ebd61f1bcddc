"""The standard change catalog: pre-approved templates of routine work.

A template is a stable entry in the catalog; what it allows lives in its versions. A
version is approved once by the roles the approval policy names for a Standard change
of its type (its own approvals, decided by the one approval engine); editing a template
proposes a new version, which needs approval again, while the approved one stays in use.
A change filed from the approved version is pre-approved, as long as it stays within it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django_fsm import FSMField, transition
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from changes.models.requests import ApprovalBase, ChangeType
from portal.fsm import StateMachineMixin
from portal.models import Component, Tenant


class StandardTemplate(models.Model):
    """A catalog entry; its versions say what it allows."""

    name = models.CharField(max_length=120, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    retire_reason = models.TextField(blank=True)
    # Bumped by every service write; forms carry it so a stale form is refused.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.public_id} {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("changes:template", kwargs={"pk": self.pk})

    @property
    def public_id(self) -> str:
        return f"STD-{self.pk:04d}" if self.pk else "STD-new"

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


class TemplateStatus(models.TextChoices):
    PENDING = "pending", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"
    WITHDRAWN = "withdrawn", "Withdrawn"


class TemplateVersion(StateMachineMixin, models.Model):
    """What a template allows, as approved (or proposed) at one point."""

    template = models.ForeignKey(
        StandardTemplate, on_delete=models.PROTECT, related_name="versions"
    )
    number = models.PositiveIntegerField()
    status = FSMField(
        max_length=12,
        choices=TemplateStatus.choices,
        default=TemplateStatus.PENDING,
        protected=True,
        db_index=True,
    )
    # "{component}", "{tenant}" and "{date}" are filled in when a change is filed.
    title_pattern = models.CharField(max_length=200)
    description = models.TextField()
    type = models.CharField(max_length=16, choices=ChangeType.choices)
    implementation_plan = models.TextField()
    backout_plan = models.TextField()
    verification_plan = models.TextField()
    # The procedures every change from this version runs: [{kind, params, summary}],
    # copied from a change whose procedures were validated by their kinds' forms.
    procedures = models.JSONField(default=list, blank=True)
    components = models.ManyToManyField(Component, related_name="+")
    tenants = models.ManyToManyField(Tenant, related_name="+")
    max_window_minutes = models.PositiveIntegerField(default=60)
    # The highest risk score a change may reach and stay pre-approved.
    risk_ceiling = models.PositiveIntegerField(default=30)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    source_change = models.ForeignKey(
        "changes.ChangeRequest",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="one_template_number"),
            models.UniqueConstraint(
                fields=["template"],
                condition=models.Q(status="approved"),
                name="one_approved_template_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.template.name}"

    def get_absolute_url(self) -> str:
        return f"{self.template.get_absolute_url()}?version={self.number}"

    @property
    def public_id(self) -> str:
        return f"{self.template.public_id}-v{self.number}"

    # --- conditions -------------------------------------------------------------
    def all_approved(self) -> bool:
        approvals = list(self.approvals.all())
        return bool(approvals) and all(a.status == ApprovalBase.Status.APPROVED for a in approvals)

    def any_rejected(self) -> bool:
        return any(a.status == ApprovalBase.Status.REJECTED for a in self.approvals.all())

    # --- transitions: they only move state; services do everything else ----------
    @transition(
        field=status,
        source=TemplateStatus.PENDING,
        target=TemplateStatus.APPROVED,
        conditions=[all_approved],
    )
    def approve(self) -> None:
        pass

    @transition(
        field=status,
        source=TemplateStatus.PENDING,
        target=TemplateStatus.REJECTED,
        conditions=[any_rejected],
    )
    def reject(self) -> None:
        pass

    @transition(field=status, source=TemplateStatus.APPROVED, target=TemplateStatus.SUPERSEDED)
    def supersede(self) -> None:
        pass

    @transition(field=status, source=TemplateStatus.PENDING, target=TemplateStatus.WITHDRAWN)
    def withdraw(self) -> None:
        pass


class TemplateApproval(ApprovalBase):
    """One role's approval of a template version, decided like a change's approval."""

    template_version = models.ForeignKey(
        TemplateVersion, on_delete=models.CASCADE, related_name="approvals"
    )
    rule = models.ForeignKey(
        "changes.ApprovalRule", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    required_because = models.CharField(max_length=300, blank=True)

    permission = "changes.decide_templateapproval"

    class Meta:
        ordering = ["role"]
        constraints = [
            models.UniqueConstraint(
                fields=["template_version", "role"], name="one_template_approval_per_role"
            )
        ]
        permissions = [("decide_templateapproval", "Can decide this template approval")]

    def __str__(self) -> str:
        return f"{self.template_version.public_id} {self.role} {self.status}"

    def get_absolute_url(self) -> str:
        return self.template_version.get_absolute_url()

    @property
    def subject(self) -> TemplateVersion:
        return self.template_version


class TemplateApprovalUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(TemplateApproval, on_delete=models.CASCADE)


class TemplateApprovalGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(TemplateApproval, on_delete=models.CASCADE)
