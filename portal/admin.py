from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from portal.models import (
    AuditEvent,
    Component,
    Notification,
    OutboxMessage,
    Service,
    Tenant,
    UserPreference,
    WorkerHeartbeat,
)


@admin.register(Tenant)
class TenantAdmin(GuardedModelAdmin):
    list_display = ("name", "slug", "contact_email")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("name", "owner_email")
    search_fields = ("name",)


@admin.register(Component)
class ComponentAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "service")
    list_filter = ("kind", "service")
    search_fields = ("name",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence is never edited by hand: view only, for superusers and auditors."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "sequence",
        "created_at",
        "username",
        "role",
        "action",
        "object_type",
        "object_id",
        "outcome",
    )
    list_filter = ("outcome", "action")
    search_fields = ("username", "object_id", "request_id")
    show_full_result_count = False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("task_name", "created_at", "published_at", "attempts", "last_error")
    list_filter = ("task_name",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("recipient", "subject", "created_at", "read_at")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("hostname", "last_seen")


@admin.register(UserPreference)
class UserPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "timezone")
