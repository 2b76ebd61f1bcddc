"""Windows, runs and the calendar over the API, with the maintenance pages' rules: the
roles that see the calendar see every window, with only the changes they may see
named; a run is seen by whoever may see its change."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from api.pagination import KeysetPagination
from api.serializers.maintenance import (
    CalendarSerializer,
    RunSerializer,
    WindowDetailSerializer,
    WindowSerializer,
    slot_entry,
)
from api.views.common import hidden
from changes import access as change_access
from maintenance import access, selectors
from maintenance.blackout import blackout_days
from maintenance.calendar_selectors import routine_policy, windows_between
from maintenance.models import MaintenanceWindow, ProcedureRun, WindowType
from maintenance.procedures import UnknownProcedure, registry

MAX_CALENDAR_DAYS = 92


def _require_windows(request) -> None:
    if not access.can_see_windows(request.user):
        raise PermissionDenied("Your roles do not include maintenance windows.")


class _WindowFilters(serializers.Serializer):
    start_from = serializers.DateField(required=False)
    start_to = serializers.DateField(required=False)
    status = serializers.ChoiceField(choices=MaintenanceWindow.Status.choices, required=False)
    type = serializers.ChoiceField(choices=WindowType.choices, required=False)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class WindowListView(GenericAPIView):
    pagination_class = KeysetPagination
    keyset = ("start", "pk")
    serializer_class = WindowSerializer

    @extend_schema(
        operation_id="windows_list",
        summary="Maintenance windows in start order",
        parameters=[
            OpenApiParameter("start_from", OpenApiTypes.DATE, description="Starting on or after."),
            OpenApiParameter("start_to", OpenApiTypes.DATE, description="Starting on or before."),
            OpenApiParameter("status", str, enum=MaintenanceWindow.Status.values),
            OpenApiParameter("type", str, enum=WindowType.values),
        ],
        responses=WindowSerializer(many=True),
    )
    def get(self, request):
        _require_windows(request)
        filters = _WindowFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        windows = MaintenanceWindow.objects.all()
        if "start_from" in wanted:
            windows = windows.filter(start__gte=_day_start(wanted["start_from"]))
        if "start_to" in wanted:
            windows = windows.filter(start__lt=_day_start(wanted["start_to"] + timedelta(days=1)))
        for key in ("status", "type"):
            if key in wanted:
                windows = windows.filter(**{key: wanted[key]})
        page = self.paginate_queryset(windows)
        return self.get_paginated_response(WindowSerializer(page, many=True).data)


class WindowDetailView(GenericAPIView):
    serializer_class = WindowDetailSerializer

    @extend_schema(
        operation_id="windows_retrieve",
        summary="A window with its scheduled changes and execution",
    )
    def get(self, request, pk: int):
        _require_windows(request)
        window = MaintenanceWindow.objects.filter(pk=pk).first()
        if window is None:
            # Every window is shared; a missing one is only missing, as on the page.
            raise Http404("No such window.")
        slots = selectors.window_slots(window)
        visible = set(
            change_access.changes_visible_to(request.user)
            .filter(pk__in=[s.change_id for s in slots])
            .values_list("pk", flat=True)
        )
        context = {
            "slots": slots,
            "visible": visible,
            "execution": selectors.window_execution(window),
        }
        return Response(WindowDetailSerializer(window, context=context).data)


class RunDetailView(GenericAPIView):
    serializer_class = RunSerializer

    @extend_schema(operation_id="runs_retrieve", summary="A procedure run with its steps")
    def get(self, request, pk: int):
        run = ProcedureRun.objects.select_related("change").filter(pk=pk).first()
        if run is None or not change_access.can_view_change(request.user, run.change):
            raise hidden(request, "run", "maintenance.procedurerun", pk)
        run = selectors.run_detail(pk)
        try:
            summary = registry.get(run.procedure.kind).summary(run.procedure.params)
        except UnknownProcedure:
            summary = run.procedure.kind
        return Response(RunSerializer(run, context={"summary": summary}).data)


class _CalendarRange(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()

    def validate(self, attrs):
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError("The end is before the start.")
        if (attrs["end"] - attrs["start"]).days >= MAX_CALENDAR_DAYS:
            raise serializers.ValidationError(f"Ask for at most {MAX_CALENDAR_DAYS} days at once.")
        return attrs


class CalendarView(GenericAPIView):
    serializer_class = CalendarSerializer

    @extend_schema(
        operation_id="calendar",
        summary="Windows (with their changes) and blackout days between two dates",
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATE, required=True, description="First day."),
            OpenApiParameter(
                "end",
                OpenApiTypes.DATE,
                required=True,
                description=f"Last day (inclusive; at most {MAX_CALENDAR_DAYS} days).",
            ),
        ],
    )
    def get(self, request):
        _require_windows(request)
        period = _CalendarRange(data=request.query_params)
        period.is_valid(raise_exception=True)
        first, last = period.validated_data["start"], period.validated_data["end"]
        windows = windows_between(_day_start(first), _day_start(last + timedelta(days=1)))
        ids = {slot.change_id for w in windows for slot in w.scheduled_changes.all()}
        visible = set(
            change_access.changes_visible_to(request.user)
            .filter(pk__in=ids)
            .values_list("pk", flat=True)
        )
        policy = routine_policy()
        days = blackout_days(first, last, policy) if policy else {}
        return Response(
            {
                "start": first,
                "end": last,
                "windows": [
                    {
                        **WindowSerializer(window).data,
                        "scheduled_changes": [
                            slot_entry(slot, slot.change_id in visible)
                            for slot in window.scheduled_changes.all()
                        ],
                    }
                    for window in windows
                ],
                "blackout_days": [
                    {"date": day.isoformat(), "reason": reason} for day, reason in days.items()
                ],
            }
        )
