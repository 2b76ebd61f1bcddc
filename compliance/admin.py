"""Admin: export jobs and chain verifications read-only; MFA devices listed without their
secrets; an administrator resets a user's MFA (lost phone) through the audited service."""

from __future__ import annotations

from django.contrib import admin, messages
from django_otp.plugins.otp_totp.models import TOTPDevice

from compliance.mfa import policy
from compliance.mfa.services import mfa_reset
from compliance.models import ChainVerification, ExportJob, MfaEnrolment
from portal.admin import ReadOnlyAdmin
from portal.roles import user_roles

# django-otp's own device admin shows each secret as a QR code and deletes devices
# without an audit row: replaced by the list below and the reset action.
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyAdmin):
    list_display = ("pk", "exporter", "format", "requested_by", "status", "rows_done", "created_at")
    list_filter = ("exporter", "status")
    exclude = ("params",)


@admin.register(ChainVerification)
class ChainVerificationAdmin(ReadOnlyAdmin):
    list_display = ("pk", "requested_by", "status", "intact", "checked", "head_hash", "created_at")


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(ReadOnlyAdmin):
    list_display = ("user", "name", "confirmed", "last_used_at")
    fields = ("user", "name", "confirmed", "last_used_at")


@admin.register(MfaEnrolment)
class MfaEnrolmentAdmin(ReadOnlyAdmin):
    list_display = ("username", "roles", "enrolled", "mfa_required")
    search_fields = ("username",)
    fields = ("username",)
    readonly_fields = ("username",)
    actions = ["reset_mfa"]

    @admin.display(description="Roles")
    def roles(self, obj) -> str:
        return ", ".join(sorted(user_roles(obj))) or "—"

    @admin.display(boolean=True, description="Enrolled")
    def enrolled(self, obj) -> bool:
        return policy.has_device(obj)

    @admin.display(boolean=True, description="MFA required")
    def mfa_required(self, obj) -> bool:
        return policy.required(obj)

    def has_change_permission(self, request, obj=None) -> bool:
        # Only for the reset action: every field stays read-only.
        return request.user.is_superuser

    @admin.action(
        description="Reset MFA (remove the devices; the user enrols again)",
        permissions=["change"],
    )
    def reset_mfa(self, request, queryset) -> None:
        for user in queryset:
            mfa_reset(user=user, by=request.user)
        messages.success(request, f"MFA reset for {queryset.count()} user(s).")
