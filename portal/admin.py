"""The admin: evidence is read-only; every edit of policy data (risk rules, approval
rules, thresholds, maintenance policies, freezes), role membership and tenant grants is
written to the audit chain in the same transaction, through one base class."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Model
from guardian.admin import GuardedModelAdmin

from portal.audit import audit_record
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

SECRET_FIELDS = {"password", "password1", "password2", "password_ciphertext"}


def _value(value: Any) -> Any:
    if isinstance(value, Model):
        return str(value)
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes, dict)):
        return sorted(str(v) for v in value)
    if isinstance(value, (int, float, bool, type(None), dict)):
        return value
    return str(value)


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete made in the admin is an audit row: who, what, the
    fields changed with their old and new values (secrets never)."""

    def _audit(self, request, obj, verb: str, details: dict[str, Any] | None = None) -> None:
        audit_record(
            action=f"admin.{obj._meta.label_lower}.{verb}",
            user=request.user,
            obj=obj,
            details={"object": str(obj)[:200], **(details or {})},
        )

    def _changes(self, form) -> dict[str, Any]:
        changed = {}
        for name in form.changed_data:
            if name in SECRET_FIELDS:
                changed[name] = {"changed": True}
                continue
            changed[name] = {
                "from": _value(form.initial.get(name)),
                "to": _value(form.cleaned_data.get(name)),
            }
        return changed

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        self._audit(request, obj, "changed" if change else "added", {"fields": self._changes(form)})

    def delete_model(self, request, obj) -> None:
        self._audit(request, obj, "deleted")
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self._audit(request, obj, "deleted")
        super().delete_queryset(request, queryset)


class AuditedGuardedAdmin(AuditedModelAdmin, GuardedModelAdmin):
    """Object permissions (tenant grants) managed here are audited too."""

    def _audited_perms(self, view, kind: str, request, object_pk, target_id):
        response = view(request, object_pk, target_id)
        if request.method == "POST" and response.status_code in (301, 302):
            obj = self.get_object(request, object_pk)
            audit_record(
                action=f"admin.{self.model._meta.label_lower}.permissions_set",
                user=request.user,
                obj=obj,
                details={
                    kind: str(target_id),
                    "permissions": sorted(request.POST.getlist("permissions")),
                },
            )
        return response

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        return self._audited_perms(
            super().obj_perms_manage_user_view, "user", request, object_pk, user_id
        )

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        return self._audited_perms(
            super().obj_perms_manage_group_view, "group", request, object_pk, group_id
        )


User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedModelAdmin, UserAdmin):
    """Role membership is group membership: who was given or lost a role is audited."""

    def save_related(self, request, form, formsets, change) -> None:
        before = set(form.instance.groups.values_list("name", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        after = set(form.instance.groups.values_list("name", flat=True))
        if before != after:
            self._audit(
                request,
                form.instance,
                "roles_changed",
                {"added": sorted(after - before), "removed": sorted(before - after)},
            )


@admin.register(Group)
class AuditedGroupAdmin(AuditedModelAdmin, GroupAdmin):
    pass


@admin.register(Tenant)
class TenantAdmin(AuditedGuardedAdmin):
    list_display = ("name", "slug", "contact_email")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Service)
class ServiceAdmin(AuditedModelAdmin):
    list_display = ("name", "owner_email")
    search_fields = ("name",)


@admin.register(Component)
class ComponentAdmin(AuditedModelAdmin):
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
class UserPreferenceAdmin(AuditedModelAdmin):
    list_display = ("user", "timezone")
