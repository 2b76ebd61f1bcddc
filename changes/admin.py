"""Change requests and approvals are read-only here: state moves and decisions only go
through the services (permission checks, separation of duties, audit). The policy
and risk rules are data the admin edits."""

from django.contrib import admin

from changes.models import (
    Approval,
    ApprovalRule,
    ChangeRequest,
    PostImplementationReview,
    RiskRule,
    RiskThreshold,
)
from portal.admin import AuditedModelAdmin, ReadOnlyAdmin


class ApprovalInline(admin.TabularInline):
    model = Approval
    extra = 0
    can_delete = False
    fields = (
        "role",
        "phase",
        "status",
        "decided_by",
        "decided_at",
        "due_at",
        "comments",
        "required_because",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChangeRequest)
class ChangeRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "public_id",
        "title",
        "type",
        "priority",
        "category",
        "state",
        "requester",
        "proposed_start",
    )
    list_filter = ("state", "type", "priority", "category")
    search_fields = ("title",)
    list_select_related = ("requester",)
    inlines = [ApprovalInline]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ("change", "role", "phase", "status", "decided_by", "decided_at", "due_at")
    list_filter = ("status", "role", "phase")
    list_select_related = ("change", "decided_by")


@admin.register(PostImplementationReview)
class PostImplementationReviewAdmin(ReadOnlyAdmin):
    list_display = ("change", "outcome", "reviewed_by", "reviewed_at")


@admin.register(RiskRule)
class RiskRuleAdmin(AuditedModelAdmin):
    list_display = ("factor", "match", "min_value", "points", "explanation", "active")
    list_filter = ("factor", "active")
    list_editable = ("points", "active")


@admin.register(RiskThreshold)
class RiskThresholdAdmin(AuditedModelAdmin):
    list_display = ("level", "min_score")
    list_editable = ("min_score",)


@admin.register(ApprovalRule)
class ApprovalRuleAdmin(AuditedModelAdmin):
    list_display = (
        "description",
        "category",
        "change_type",
        "condition",
        "role",
        "phase",
        "due_hours",
        "active",
    )
    list_filter = ("category", "phase", "role", "active")
