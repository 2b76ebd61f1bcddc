"""Changes and approvals as the API shows and takes them. Serializers read input and
present rows; every rule lives in the services (``changes.services``) and access modules
they call, as for the pages."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from changes.forms import MAX_LEAD, MAX_TEXT
from changes.models import Approval, Category, ChangeRequest, ChangeType, Priority, RiskLevel
from portal.models import Component, Service
from portal.permissions import visible_tenants


class RiskFactorSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    value = serializers.CharField()
    points = serializers.IntegerField()
    why = serializers.CharField()


class UntilAssessed(serializers.ChoiceField):
    """A risk level or category: null until the change's risk is assessed (the model
    keeps them blank), as risk_score and risk_assessed_at are."""

    def __init__(self, choices, **kwargs):
        super().__init__(choices, read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value):
        return value or None


class ApprovalSerializer(serializers.ModelSerializer):
    decided_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    delegated_to = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Approval
        fields = [
            "id",
            "role",
            "phase",
            "status",
            "comments",
            "decided_by",
            "decided_at",
            "due_at",
            "delegated_to",
            "required_because",
            "version",
        ]
        read_only_fields = fields


class ChangeSummarySerializer(serializers.ModelSerializer):
    requester = serializers.SlugRelatedField(slug_field="username", read_only=True)
    tenants = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    components = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    category = UntilAssessed(Category.choices)
    category_label = serializers.CharField(read_only=True)
    risk_level = UntilAssessed(RiskLevel.choices)
    url = serializers.SerializerMethodField()

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "public_id",
            "title",
            "type",
            "priority",
            "state",
            "category",
            "category_label",
            "pre_approved",
            "risk_level",
            "risk_score",
            "proposed_start",
            "window_minutes",
            "requester",
            "tenants",
            "components",
            "version",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField())
    def get_url(self, change: ChangeRequest) -> str:
        request = self.context.get("request")
        path = change.get_absolute_url()
        return request.build_absolute_uri(path) if request else path


class ChangeDetailSerializer(ChangeSummarySerializer):
    services = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    risk_factors = RiskFactorSerializer(many=True, read_only=True)
    approvals = ApprovalSerializer(many=True, read_only=True)
    template = serializers.SerializerMethodField()

    class Meta(ChangeSummarySerializer.Meta):
        fields = [
            *ChangeSummarySerializer.Meta.fields,
            "description",
            "services",
            "blackout_exception",
            "implementation_plan",
            "backout_plan",
            "verification_plan",
            "risk_factors",
            "risk_assessed_at",
            "template",
            "procedure_count",
            "created_at",
            "submitted_at",
            "decided_at",
            "approvals",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_template(self, change: ChangeRequest) -> str | None:
        version = change.template_version
        return version.public_id if version else None


class Named(serializers.SlugRelatedField):
    """A catalog object by its name or slug. No name holds a NUL (PostgreSQL text cannot),
    so one with it is unknown here rather than a database error."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.STR)
class VisibleTenants(Named):
    """Tenants by slug, among those the user may see: a hidden one reads as unknown."""

    def get_queryset(self):
        return visible_tenants(self.context["request"].user)


def future(value):
    now = timezone.now()
    if value <= now:
        raise serializers.ValidationError("The proposed start must be in the future.")
    if value > now + MAX_LEAD:
        raise serializers.ValidationError("The proposed start must be within two years from now.")
    return value


class ChangeWriteSerializer(serializers.Serializer):
    """A new change request (a draft); ``submit`` it next, as the page's two buttons."""

    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=MAX_TEXT)
    type = serializers.ChoiceField(choices=ChangeType.choices)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.MEDIUM)
    components = Named(
        slug_field="name", many=True, queryset=Component.objects.all(), allow_empty=False
    )
    services = Named(slug_field="name", many=True, queryset=Service.objects.all(), required=False)
    tenants = VisibleTenants(slug_field="slug", many=True, allow_empty=False)
    proposed_start = serializers.DateTimeField(validators=[future])
    window_minutes = serializers.IntegerField(min_value=1, max_value=1440)
    blackout_exception = serializers.BooleanField(default=False)
    implementation_plan = serializers.CharField(max_length=MAX_TEXT)
    backout_plan = serializers.CharField(max_length=MAX_TEXT)
    verification_plan = serializers.CharField(max_length=MAX_TEXT)

    def validate_title(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Give the change a title.")
        return value.strip()


class ChangeUpdateSerializer(ChangeWriteSerializer):
    """Fields to change on a draft; the others keep their values. ``version`` is the one
    the client read: an older one is refused with 409."""

    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if name != "version":
                field.required = False


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        required=False,
        help_text="The version you read; an older one is refused with 409.",
    )


class CancelSerializer(VersionSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[("APPROVED", "Approve"), ("REJECTED", "Reject")])
    comment = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True)
    version = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        help_text="The approval's version you read; an older one is refused with 409.",
    )


class QueueChangeSerializer(serializers.ModelSerializer):
    requester = serializers.SlugRelatedField(slug_field="username", read_only=True)
    category = UntilAssessed(Category.choices)
    risk_level = UntilAssessed(RiskLevel.choices)

    class Meta:
        model = ChangeRequest
        fields = ["id", "public_id", "title", "category", "risk_level", "risk_score", "requester"]
        read_only_fields = fields


class PendingApprovalSerializer(serializers.ModelSerializer):
    change = QueueChangeSerializer(read_only=True)
    overdue = serializers.BooleanField(source="is_overdue", read_only=True)

    class Meta:
        model = Approval
        fields = [
            "id",
            "role",
            "phase",
            "status",
            "due_at",
            "overdue",
            "required_because",
            "version",
            "change",
        ]
        read_only_fields = fields
