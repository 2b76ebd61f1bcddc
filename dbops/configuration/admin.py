"""Rules are data the admin edits (every save and delete audited); change sets and
tuning sessions are evidence, read-only."""

from __future__ import annotations

from django.contrib import admin

from dbops.configuration import services
from dbops.configuration.models import (
    ConfigurationChange,
    ConfigurationChangeSet,
    ConfigurationRule,
)
from dbops.tuning.models import TuningAdjustment, TuningSample, TuningSession
from portal.admin import ReadOnlyAdmin


@admin.register(ConfigurationRule)
class ConfigurationRuleAdmin(admin.ModelAdmin):
    list_display = ("code", "rule_type", "parameter", "minimum", "maximum", "enabled")
    list_filter = ("rule_type", "enabled")
    actions = None  # a bulk delete would bypass the audit row

    def save_model(self, request, obj, form, change) -> None:
        services.configuration_rule_save(
            rule=obj, by=request.user, changed=list(form.changed_data), created=not change
        )

    def delete_model(self, request, obj) -> None:
        services.configuration_rule_delete(rule=obj, by=request.user)


class ConfigurationChangeInline(admin.TabularInline):
    model = ConfigurationChange
    extra = 0
    can_delete = False
    fields = (
        "position",
        "parameter",
        "current_value",
        "value_at_apply",
        "new_value",
        "applied_value",
        "rollback_value",
        "rollback_reset",
        "status",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConfigurationChangeSet)
class ConfigurationChangeSetAdmin(ReadOnlyAdmin):
    list_display = ("pk", "target", "change", "source", "status", "restart_status", "applied_at")
    list_filter = ("status", "source")
    list_select_related = ("target", "change")
    inlines = [ConfigurationChangeInline]


class TuningAdjustmentInline(admin.TabularInline):
    model = TuningAdjustment
    extra = 0
    can_delete = False
    fields = ("position", "entries", "status", "reference_median", "median", "improvement_percent")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TuningSession)
class TuningSessionAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "target",
        "purpose",
        "metric",
        "status",
        "baseline_median",
        "final_median",
    )
    list_filter = ("purpose", "status")
    list_select_related = ("target",)
    inlines = [TuningAdjustmentInline]


@admin.register(TuningSample)
class TuningSampleAdmin(ReadOnlyAdmin):
    list_display = ("session", "seq", "phase", "tps", "latency_ms", "temp_bytes", "taken_at")
    list_filter = ("phase",)
