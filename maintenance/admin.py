"""Policies and freezes are data the admin edits; windows, executions and runs are
evidence and change only through the services (read-only here)."""

from django.contrib import admin

from maintenance.models import (
    BlackoutPeriod,
    ChangeProcedure,
    MaintenanceExecution,
    MaintenanceIssue,
    MaintenancePolicy,
    MaintenanceWindow,
    ProcedureRun,
    ScheduledChange,
    StepRun,
)
from portal.admin import AuditedModelAdmin, ReadOnlyAdmin


@admin.register(MaintenancePolicy)
class MaintenancePolicyAdmin(AuditedModelAdmin):
    list_display = (
        "type",
        "rrule",
        "default_duration_minutes",
        "max_duration_minutes",
        "end_of_month_days",
        "holiday_country",
        "holiday_market",
        "notification_offsets",
    )

    def has_add_permission(self, request) -> bool:
        return False  # one row per window type, created by the data migration

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BlackoutPeriod)
class BlackoutPeriodAdmin(AuditedModelAdmin):
    list_display = ("start_date", "end_date", "reason", "created_by", "created_at")
    readonly_fields = ("created_by", "created_at")

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class StepRunInline(admin.TabularInline):
    model = StepRun
    extra = 0
    can_delete = False
    fields = ("position", "kind", "name", "status", "started_at", "finished_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(ReadOnlyAdmin):
    list_display = ("start", "type", "duration_minutes", "status", "title")
    list_filter = ("type", "status")


@admin.register(ScheduledChange)
class ScheduledChangeAdmin(ReadOnlyAdmin):
    list_display = ("change", "window", "position", "planned_start", "planned_minutes")
    list_select_related = ("change", "window")


@admin.register(MaintenanceExecution)
class MaintenanceExecutionAdmin(ReadOnlyAdmin):
    list_display = (
        "window",
        "status",
        "started_at",
        "completed_at",
        "procedures_total",
        "procedures_completed",
        "procedures_failed",
    )


@admin.register(MaintenanceIssue)
class MaintenanceIssueAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "message", "change")


@admin.register(ChangeProcedure)
class ChangeProcedureAdmin(ReadOnlyAdmin):
    list_display = ("change", "position", "kind")


@admin.register(ProcedureRun)
class ProcedureRunAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "change",
        "procedure",
        "attempt",
        "status",
        "started_at",
        "finished_at",
        "worker",
    )
    list_filter = ("status",)
    inlines = [StepRunInline]
