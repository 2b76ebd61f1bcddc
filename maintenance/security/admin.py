"""Admin for security updates: a component's executor is configured here (through the
audited service, its settings checked by the executor); advisories, inventory, backups
and results are evidence and stay read-only."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin

from maintenance.security import executors
from maintenance.security.executors.base import ExecutorRefused
from maintenance.security.models import (
    Advisory,
    ComponentBackup,
    ComponentExecutor,
    Exposure,
    UpdateResult,
)
from maintenance.security.services import component_executor_register
from portal.admin import ReadOnlyAdmin


class ComponentExecutorForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=())
    config_json = forms.CharField(
        label="Configuration (JSON)",
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text='python_environment: {"environment": "billing-api", "health_command": '
        '"python -m billing.health"}; postgresql: {"schemas": []}; script: {"discover": …, '
        '"backup": …, "patch": …, "verify": …, "rollback": …}.',
    )

    class Meta:
        model = ComponentExecutor
        fields = ("component", "kind", "tenants", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = executors.choices()
        if self.instance.pk:
            self.fields["config_json"].initial = json.dumps(self.instance.config, indent=2)

    def clean_config_json(self) -> dict:
        raw = self.cleaned_data.get("config_json") or "{}"
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The configuration is a JSON object.")
        return value

    def clean(self):
        cleaned = super().clean()
        component, kind = cleaned.get("component"), cleaned.get("kind")
        if component is not None and kind and "config_json" in cleaned:
            try:
                executors.get(kind).clean_config(component, cleaned["config_json"])
            except (ExecutorRefused, executors.UnknownExecutor) as exc:
                raise forms.ValidationError(str(exc)) from None
        return cleaned


@admin.register(ComponentExecutor)
class ComponentExecutorAdmin(admin.ModelAdmin):
    form = ComponentExecutorForm
    list_display = ("component", "kind", "is_active", "last_refreshed_at", "last_error")
    readonly_fields = ("config", "last_refreshed_at", "last_error")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its history and results stay; deactivate instead

    def save_model(self, request, obj, form, change) -> None:
        # The form checked the configuration with the executor; the service checks it
        # again, saves and audits.
        saved = component_executor_register(
            component=form.cleaned_data["component"],
            kind=form.cleaned_data["kind"],
            config=form.cleaned_data["config_json"],
            tenants=form.cleaned_data["tenants"],
            is_active=form.cleaned_data["is_active"],
            by=request.user,
        )
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change) -> None:
        pass  # the service set the tenants


@admin.register(Advisory)
class AdvisoryAdmin(ReadOnlyAdmin):
    list_display = ("osv_id", "severity", "summary", "modified", "withdrawn", "imported_at")
    list_filter = ("severity", "source")
    search_fields = ("osv_id", "summary")


@admin.register(Exposure)
class ExposureAdmin(ReadOnlyAdmin):
    list_display = ("executor", "package", "installed_version", "advisory", "severity")
    list_filter = ("severity", "ecosystem")


@admin.register(ComponentBackup)
class ComponentBackupAdmin(ReadOnlyAdmin):
    list_display = ("component", "kind", "size_bytes", "sha256", "created_at", "pruned_at")


@admin.register(UpdateResult)
class UpdateResultAdmin(ReadOnlyAdmin):
    list_display = ("run", "position", "component", "package", "status", "failed_step")
    list_filter = ("status",)
