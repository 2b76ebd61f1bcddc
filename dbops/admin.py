"""Targets are managed here or on the portal page, through the same form and services:
the password is write-only and every change is audited. Snapshots and proposals are
evidence, so they are read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from dbops import services
from dbops.forms import DatabaseTargetForm
from dbops.models import DatabaseTarget, IndexSuggestion, QueryStatsSnapshot
from portal.admin import ReadOnlyAdmin
from portal.errors import PortalError
from portal.transactions import audit_refusal


@admin.register(DatabaseTarget)
class DatabaseTargetAdmin(admin.ModelAdmin):
    form = DatabaseTargetForm
    list_display = ("name", "host", "port", "database", "user", "sslmode", "is_active")
    list_filter = ("is_active", "sslmode")
    search_fields = ("name", "host", "database")
    readonly_fields = ("component", "last_checked_at")
    actions = None  # a bulk delete would bypass the service and its audit row

    def get_fields(self, request, obj=None):
        fields = [*self.form.Meta.fields, "password"]
        if obj is None:
            return [*fields, "component"]
        return [*fields, "clear_password", "component", "last_checked_at"]

    def get_readonly_fields(self, request, obj=None):
        return ("component", "last_checked_at") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        data = form.service_data()
        if change:
            saved = services.database_target_update(
                target=obj,
                by=request.user,
                data=data,
                password=form.cleaned_data["password"] or None,
                clear_password=form.cleaned_data.get("clear_password", False),
                tenants=form.cleaned_data["tenants"],
            )
        else:
            saved = services.database_target_create(
                by=request.user,
                data=data,
                password=form.cleaned_data["password"],
                tenants=form.cleaned_data["tenants"],
                component=form.cleaned_data.get("component"),
            )
        obj.pk = saved.pk
        obj.component = saved.component

    def save_related(self, request, form, formsets, change):
        # The service has set the tenants; the form's own save_m2m would do it unaudited.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        services.database_target_delete(target=obj, by=request.user)

    def _changeform_view(self, request, object_id, form_url, extra_context):
        try:
            return super()._changeform_view(request, object_id, form_url, extra_context)
        except PortalError as exc:
            # The service ran inside the admin's transaction, so its refusal is audited
            # here; its own savepoint has already rolled its writes back.
            audit_refusal(exc)
            messages.error(request, exc.message)
            return HttpResponseRedirect(request.get_full_path())

    def _delete_view(self, request, object_id, extra_context):
        try:
            return super()._delete_view(request, object_id, extra_context)
        except PortalError as exc:
            # The service ran inside the admin's transaction, so its refusal is audited
            # here; its own savepoint has already rolled its writes back.
            audit_refusal(exc)
            messages.error(request, exc.message)
            return HttpResponseRedirect(request.get_full_path())


@admin.register(QueryStatsSnapshot)
class QueryStatsSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("target", "taken_at", "trigger", "statements_available", "error")
    list_filter = ("trigger", "target")
    list_select_related = ("target",)


@admin.register(IndexSuggestion)
class IndexSuggestionAdmin(ReadOnlyAdmin):
    list_display = (
        "index_name",
        "target",
        "table",
        "change",
        "mean_exec_time_before",
        "mean_exec_time_after",
    )
    list_select_related = ("target", "change")


# Configuration rules, change sets and tuning sessions.
from dbops.configuration import admin as configuration_admin  # noqa: E402, F401
