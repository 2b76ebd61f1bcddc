"""Windows, runs and the calendar as the API shows them. A window is shared by every
tenant, so a change in it that the viewer may not see is listed without its id or
title, as on the calendar and the window page."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from maintenance.models import MaintenanceExecution, MaintenanceWindow, ProcedureRun, StepRun


class WindowSerializer(serializers.ModelSerializer):
    end = serializers.DateTimeField(read_only=True)

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "type",
            "title",
            "status",
            "start",
            "end",
            "duration_minutes",
            "timezone",
            "cutoff_behavior",
        ]
        read_only_fields = fields


class SlotChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    public_id = serializers.CharField(allow_null=True)
    title = serializers.CharField(allow_null=True)
    state = serializers.CharField(allow_null=True)
    restricted = serializers.BooleanField(help_text="A change you may not see: no id or title.")


class SlotSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    planned_start = serializers.DateTimeField()
    planned_minutes = serializers.IntegerField()
    change = SlotChangeSerializer()


class ExecutionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MaintenanceExecution
        fields = [
            "status",
            "planned_at",
            "started_at",
            "completed_at",
            "procedures_total",
            "procedures_completed",
            "procedures_failed",
        ]
        read_only_fields = fields


class WindowDetailSerializer(WindowSerializer):
    scheduled_changes = serializers.SerializerMethodField()
    execution = serializers.SerializerMethodField()

    class Meta(WindowSerializer.Meta):
        fields = [*WindowSerializer.Meta.fields, "reason", "scheduled_changes", "execution"]
        read_only_fields = fields

    @extend_schema_field(SlotSerializer(many=True))
    def get_scheduled_changes(self, window: MaintenanceWindow) -> list[dict]:
        visible = self.context["visible"]
        return [slot_entry(slot, slot.change_id in visible) for slot in self.context["slots"]]

    @extend_schema_field(ExecutionSerializer(allow_null=True))
    def get_execution(self, window: MaintenanceWindow) -> dict | None:
        execution = self.context.get("execution")
        return ExecutionSerializer(execution).data if execution else None


def slot_entry(slot, seen: bool) -> dict:
    change = slot.change
    return {
        "position": slot.position,
        "planned_start": slot.planned_start,
        "planned_minutes": slot.planned_minutes,
        "change": {
            "id": change.pk if seen else None,
            "public_id": change.public_id if seen else None,
            "title": change.title if seen else None,
            "state": change.state if seen else None,
            "restricted": not seen,
        },
    }


class StepSerializer(serializers.ModelSerializer):
    completed_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = StepRun
        fields = [
            "position",
            "kind",
            "name",
            "status",
            "started_at",
            "finished_at",
            "output",
            "result",
            "evidence",
            "completed_by",
        ]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    change = serializers.SerializerMethodField()
    procedure = serializers.SerializerMethodField()
    steps = StepSerializer(many=True, read_only=True)

    class Meta:
        model = ProcedureRun
        fields = [
            "id",
            "change",
            "procedure",
            "attempt",
            "status",
            "queued_at",
            "started_at",
            "finished_at",
            "progress",
            "output",
            "result",
            "error",
            "steps",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "public_id": {"type": "string"}},
            "required": ["id", "public_id"],
        }
    )
    def get_change(self, run: ProcedureRun) -> dict:
        return {"id": run.change_id, "public_id": run.change.public_id}

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "kind": {"type": "string"},
                "position": {"type": "integer"},
                "summary": {"type": "string"},
            },
            "required": ["kind", "position", "summary"],
        }
    )
    def get_procedure(self, run: ProcedureRun) -> dict:
        return {
            "kind": run.procedure.kind,
            "position": run.procedure.position,
            "summary": self.context.get("summary", run.procedure.kind),
        }


class CalendarWindowSerializer(WindowSerializer):
    scheduled_changes = SlotSerializer(many=True, read_only=True)

    class Meta(WindowSerializer.Meta):
        fields = [*WindowSerializer.Meta.fields, "scheduled_changes"]
        read_only_fields = fields


class BlackoutDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    reason = serializers.CharField()


class CalendarSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    windows = CalendarWindowSerializer(many=True)
    blackout_days = BlackoutDaySerializer(many=True)
