"""Change requests and their approvals (seed: ChangeRequest, Approval, Change Flow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django_fsm import FSMField, transition
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from portal.fsm import StateMachineMixin
from portal.models import Component, Service, Tenant
from portal.roles import Role

ROUTINE_MAX_WINDOW_MINUTES = 240  # seed: MAINTENANCE_SCHEDULE.ROUTINE.maxDuration


class ChangeType(models.TextChoices):
    SECURITY = "SECURITY", "Security"
    PERFORMANCE = "PERFORMANCE", "Performance"
    FEATURE = "FEATURE", "Feature"
    CONFIGURATION = "CONFIGURATION", "Configuration"


class Priority(models.TextChoices):
    CRITICAL = "CRITICAL", "Critical"
    HIGH = "HIGH", "High"
    MEDIUM = "MEDIUM", "Medium"
    LOW = "LOW", "Low"


class RiskLevel(models.TextChoices):
    LOW = "LOW", "Low"
    HIGH = "HIGH", "High"
    CRITICAL = "CRITICAL", "Critical"


class Category(models.TextChoices):
    STANDARD = "STANDARD", "Standard change"
    EMERGENCY = "EMERGENCY", "Emergency change"
    URGENT = "URGENT", "Urgent change"


CATEGORY_FOR_RISK = {
    RiskLevel.LOW: Category.STANDARD,
    RiskLevel.HIGH: Category.EMERGENCY,
    RiskLevel.CRITICAL: Category.URGENT,
}
REVIEW_NAME = {
    Category.STANDARD: "Role approvals",
    Category.EMERGENCY: "Immediate Review",
    Category.URGENT: "Emergency Committee",
}


class State(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    SCHEDULED = "scheduled", "Scheduled"
    IN_PROGRESS = "in_progress", "In progress"
    VERIFYING = "verifying", "Verifying"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    CLOSED = "closed", "Closed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATES = (
    State.DRAFT,
    State.SUBMITTED,
    State.IN_REVIEW,
    State.APPROVED,
    State.SCHEDULED,
    State.IN_PROGRESS,
    State.VERIFYING,
    State.COMPLETED,
    State.FAILED,
    State.ROLLED_BACK,
)
CANCELLABLE_STATES = (
    State.DRAFT,
    State.SUBMITTED,
    State.IN_REVIEW,
    State.APPROVED,
    State.SCHEDULED,
)
EXECUTED_STATES = (State.COMPLETED, State.FAILED, State.ROLLED_BACK)
# Procedures may change until execution starts; changing them after approval reopens
# the review.
PROCEDURE_EDIT_STATES = CANCELLABLE_STATES
FINISHED_STATES = (*EXECUTED_STATES, State.CLOSED, State.REJECTED, State.CANCELLED)


class Impact(models.TextChoices):
    """Seed DatabaseMaintenance.impact: how much a procedure disturbs the system."""

    LOW = "LOW", "Low"
    MEDIUM = "MEDIUM", "Medium"
    HIGH = "HIGH", "High"


IMPACT_RANK = {"": 0, Impact.LOW: 1, Impact.MEDIUM: 2, Impact.HIGH: 3}


class ChangeRequest(StateMachineMixin, models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField()
    type = models.CharField(max_length=16, choices=ChangeType.choices)
    priority = models.CharField(max_length=10, choices=Priority.choices)
    components = models.ManyToManyField(Component, related_name="changes")
    services = models.ManyToManyField(Service, related_name="changes", blank=True)
    tenants = models.ManyToManyField(Tenant, related_name="changes")
    proposed_start = models.DateTimeField()
    window_minutes = models.PositiveIntegerField()
    blackout_exception = models.BooleanField(default=False)
    implementation_plan = models.TextField()
    backout_plan = models.TextField()
    verification_plan = models.TextField()

    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices, blank=True)
    risk_score = models.IntegerField(null=True, blank=True)
    risk_factors = models.JSONField(default=list, blank=True)
    risk_assessed_at = models.DateTimeField(null=True, blank=True)
    category = models.CharField(max_length=10, choices=Category.choices, blank=True)

    state = FSMField(default=State.DRAFT, choices=State.choices, protected=True, db_index=True)
    # Bumped by every service write; forms carry it so a stale form is refused.
    version = models.PositiveIntegerField(default=1)
    outcome = models.CharField(
        max_length=10,
        choices=[("SUCCESSFUL", "Successful"), ("FAILED", "Failed")],
        blank=True,
    )

    # What the change's procedures declare (seed DatabaseMaintenance.impact and
    # requiresDowntime), kept here by the procedure services so risk can weigh them.
    procedure_count = models.PositiveIntegerField(default=0)
    procedure_impact = models.CharField(max_length=6, choices=Impact.choices, blank=True)
    requires_downtime = models.BooleanField(default=False)

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="change_requests"
    )
    # Who carried it out: none of them may decide any of its approvals.
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    implemented_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    copied_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="copies"
    )
    # Filed from a standard change template: pre-approved when it stays within it.
    template_version = models.ForeignKey(
        "changes.TemplateVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="changes",
    )
    pre_approved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["requester", "state"]),
            models.Index(fields=["proposed_start"]),
            # The change list: newest first, keyset pages, and its state and requester
            # filters in the same order.
            models.Index(fields=["-created_at", "-id"], name="change_list_idx"),
            models.Index(fields=["state", "-created_at", "-id"], name="change_state_list_idx"),
            models.Index(
                fields=["requester", "-created_at", "-id"], name="change_requester_list_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("changes:detail", kwargs={"pk": self.pk})

    @staticmethod
    def public_id_of(pk: int) -> str:
        """How a change is named to people (lists that read plain ids name it so too)."""
        return f"CHG-{pk:06d}"

    @staticmethod
    def pk_of(name: str) -> int | None:
        """The id a person's "CHG-000123" names ("chg-123" and "123" too), or None when
        it names none (the inverse of ``public_id_of``)."""
        digits = name.strip().upper().removeprefix("CHG-").lstrip("0")
        if digits.isascii() and digits.isdecimal() and len(digits) <= 12:
            return int(digits)
        return None

    @property
    def public_id(self) -> str:
        return self.public_id_of(self.pk) if self.pk else "CHG-new"

    @property
    def copied_from_public_id(self) -> str:
        return self.public_id_of(self.copied_from_id) if self.copied_from_id else ""

    @property
    def review_name(self) -> str:
        if self.pre_approved:
            return "Pre-approved by its standard change template"
        return REVIEW_NAME.get(self.category, "")

    @property
    def category_label(self) -> str:
        """The category as pages show it: a change filed from an approved template and
        within it is "Standard (pre-approved)"."""
        if self.pre_approved and self.category == Category.STANDARD:
            return "Standard (pre-approved)"
        return self.get_category_display()

    @property
    def proposed_end(self):
        return self.proposed_start + timedelta(minutes=self.window_minutes)

    # --- conditions -------------------------------------------------------------
    def all_required_approved(self) -> bool:
        pre = [a for a in self.approvals.all() if a.phase == Approval.Phase.PRE]
        return bool(pre) and all(a.status == Approval.Status.APPROVED for a in pre)

    def any_rejected(self) -> bool:
        return any(
            a.phase == Approval.Phase.PRE and a.status == Approval.Status.REJECTED
            for a in self.approvals.all()
        )

    def review_done(self) -> bool:
        # Free when the page selected ``review`` with the change; one query otherwise.
        return hasattr(self, "review") and self.review is not None

    def retroactive_pending(self) -> list[Approval]:
        return [
            a
            for a in self.approvals.all()
            if a.phase == Approval.Phase.RETROACTIVE and a.status == Approval.Status.PENDING
        ]

    def retroactive_refused(self) -> list[Approval]:
        return [
            a
            for a in self.approvals.all()
            if a.phase == Approval.Phase.RETROACTIVE and a.status == Approval.Status.REJECTED
        ]

    def corrective_action_recorded(self) -> bool:
        return bool(self.corrective_actions.all())

    def retroactive_done(self) -> bool:
        """Ratified: nothing pending, and a refused ratification answered by a recorded
        corrective action (a refusal is not a pass)."""
        if self.retroactive_pending():
            return False
        return not self.retroactive_refused() or self.corrective_action_recorded()

    def closable(self) -> bool:
        if not self.review_done():
            return False
        return self.category != Category.URGENT or self.retroactive_done()

    # --- transitions: they only move state; services do everything else ----------
    @transition(field=state, source=State.DRAFT, target=State.SUBMITTED)
    def submit(self) -> None:
        pass

    @transition(field=state, source=State.SUBMITTED, target=State.IN_REVIEW)
    def start_review(self) -> None:
        pass

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=State.APPROVED,
        conditions=[all_required_approved],
    )
    def approve(self) -> None:
        pass

    def is_pre_approved(self) -> bool:
        return self.pre_approved

    @transition(
        field=state,
        source=State.SUBMITTED,
        target=State.APPROVED,
        conditions=[is_pre_approved],
    )
    def pre_approve(self) -> None:
        pass

    @transition(
        field=state, source=State.IN_REVIEW, target=State.REJECTED, conditions=[any_rejected]
    )
    def reject(self) -> None:
        pass

    @transition(field=state, source=[State.APPROVED, State.SCHEDULED], target=State.IN_REVIEW)
    def reopen_review(self) -> None:
        pass

    @transition(field=state, source=State.APPROVED, target=State.SCHEDULED)
    def schedule(self) -> None:
        pass

    @transition(field=state, source=State.SCHEDULED, target=State.APPROVED)
    def unschedule(self) -> None:
        pass

    @transition(field=state, source=State.SCHEDULED, target=State.IN_PROGRESS)
    def start(self) -> None:
        pass

    @transition(field=state, source=State.IN_PROGRESS, target=State.VERIFYING)
    def implemented(self) -> None:
        pass

    @transition(field=state, source=State.VERIFYING, target=State.COMPLETED)
    def complete(self) -> None:
        pass

    @transition(field=state, source=[State.IN_PROGRESS, State.VERIFYING], target=State.FAILED)
    def fail(self) -> None:
        pass

    @transition(field=state, source=State.FAILED, target=State.ROLLED_BACK)
    def roll_back(self) -> None:
        pass

    @transition(
        field=state, source=list(EXECUTED_STATES), target=State.CLOSED, conditions=[closable]
    )
    def close(self) -> None:
        pass

    @transition(field=state, source=list(CANCELLABLE_STATES), target=State.CANCELLED)
    def cancel(self) -> None:
        pass


class ApprovalBase(models.Model):
    """Seed Approval {role, status, comments, timestamp}: the fields and rules every
    approval shares, whether it approves a change or an emergency window. One engine
    (``changes.services.decisions``) decides them all."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Rejected"

    role = models.CharField(max_length=20, choices=Role.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    comments = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)  # seed: timestamp
    due_at = models.DateTimeField(null=True, blank=True)
    delegated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    delegated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    delegated_at = models.DateTimeField(null=True, blank=True)
    delegation_expires_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every write; the decision form carries it so a stale form is refused.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    @property
    def is_overdue(self) -> bool:
        return self.overdue(self.status, self.due_at)

    @classmethod
    def overdue(cls, status: str, due_at, now=None) -> bool:
        """Still pending past its due time (the rule for rows read as plain values)."""
        return (
            status == cls.Status.PENDING and due_at is not None and due_at < (now or timezone.now())
        )

    def delegation_active(self, now=None) -> bool:
        now = now or timezone.now()
        return bool(
            self.delegated_to_id
            and self.delegation_expires_at is not None
            and self.delegation_expires_at > now
        )


# The approval queue's order: soonest due first, an approval without a due time after
# every one with one. As an expression (and an index on it) so a keyset page of the
# queue is one bounded index range, whichever direction it is read.
NO_DUE_TIME = datetime(9999, 12, 31, tzinfo=UTC)


def queue_due() -> Coalesce:
    return Coalesce("due_at", models.Value(NO_DUE_TIME))


class Approval(ApprovalBase):
    """A change's approval by one role, before execution or retroactively."""

    class Phase(models.TextChoices):
        PRE = "PRE", "Before execution"
        RETROACTIVE = "RETROACTIVE", "Retroactive review"

    change = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="approvals")
    phase = models.CharField(max_length=12, choices=Phase.choices, default=Phase.PRE)
    rule = models.ForeignKey(
        "ApprovalRule", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The rule's wording when the approval was required, kept even if the rule changes.
    required_because = models.CharField(max_length=300, blank=True)

    permission = "changes.decide_approval"

    class Meta:
        ordering = ["phase", "role"]
        constraints = [
            models.UniqueConstraint(fields=["change", "role"], name="one_approval_per_role")
        ]
        indexes = [
            models.Index(fields=["status", "phase", "due_at"], name="approval_queue_idx"),
            models.Index(fields=["decided_by", "change"], name="approval_decider_idx"),
            # The approval queue: pending ones only, in the queue's order. Plain
            # ascending columns: PostgreSQL's ascending index already sorts NULLs last
            # (what the queue's ORDER BY asks), and SQLite refuses NULLS LAST in an index.
            models.Index(
                fields=["due_at", "id"],
                condition=models.Q(status="PENDING"),
                name="approval_pending_due_idx",
            ),
            models.Index(
                queue_due(),
                models.F("id"),
                condition=models.Q(status="PENDING"),
                name="approval_queue_order_idx",
            ),
        ]
        permissions = [("decide_approval", "Can decide this approval")]

    def __str__(self) -> str:
        return f"{self.change.public_id} {self.role} {self.status}"

    def get_absolute_url(self) -> str:
        return reverse("changes:approval", kwargs={"pk": self.pk})

    @property
    def subject(self) -> ChangeRequest:
        return self.change


class ApprovalUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Approval, on_delete=models.CASCADE)


class ApprovalGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Approval, on_delete=models.CASCADE)
