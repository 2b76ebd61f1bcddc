"""The standard change catalog over the API: the templates a pipeline may file from, and
filing a pre-approved change from one (the same service as the catalog's page)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from api.serializers.changes import ChangeDetailSerializer, Named, VisibleTenants, future
from api.views.changes import change_body
from api.views.common import hidden, valid
from changes import services, template_selectors
from changes.models import Priority
from changes.template_access import templates_visible_to
from portal.models import Component


class TemplateVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    public_id = serializers.CharField()
    type = serializers.CharField()
    title_pattern = serializers.CharField()
    max_window_minutes = serializers.IntegerField()
    risk_ceiling = serializers.IntegerField()
    components = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_components(self, version) -> list[str]:
        return sorted(c.name for c in version.components.all())


class TemplateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    public_id = serializers.CharField()
    name = serializers.CharField()
    current = TemplateVersionSerializer(allow_null=True)


class FileSerializer(serializers.Serializer):
    components = Named(
        slug_field="name", many=True, queryset=Component.objects.all(), allow_empty=False
    )
    tenants = VisibleTenants(slug_field="slug", many=True, allow_empty=False)
    proposed_start = serializers.DateTimeField(validators=[future])
    window_minutes = serializers.IntegerField(min_value=1, max_value=1440)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.LOW)


class TemplateListView(GenericAPIView):
    serializer_class = TemplateSerializer

    @extend_schema(
        operation_id="templates_list",
        summary="Standard change templates you may file from",
        responses=TemplateSerializer(many=True),
    )
    def get(self, request):
        templates = template_selectors.catalog(request.user)
        return Response(TemplateSerializer(templates, many=True).data)


class TemplateFileView(GenericAPIView):
    serializer_class = ChangeDetailSerializer
    scope = "write"

    @extend_schema(
        operation_id="templates_file",
        summary="File and submit a standard change from a template (pre-approved within it)",
        request=FileSerializer,
        responses={201: ChangeDetailSerializer},
    )
    def post(self, request, pk: int):
        template = templates_visible_to(request.user).filter(pk=pk).first()
        if template is None:
            raise hidden(request, "template", "changes.standardtemplate", pk,
                         action="template.hidden")  # fmt: skip
        data = valid(FileSerializer, request)
        components = list(data["components"])
        change = services.change_file_from_template(
            template=template,
            by=request.user,
            data=data,
            components=components,
            tenants=list(data["tenants"]),
            services=list({c.service for c in components if c.service_id}),
        )
        return Response(
            change_body(request, change),
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/changes/{change.pk}/"},
        )
