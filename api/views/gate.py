"""``GET /api/gate/?component=<name>&tenant=<slug>``: 200 while an approved change
covering both is in progress in its open window, 423 (Locked) with the reason otherwise."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from api import gate
from api.problems import problem
from api.views.common import hidden
from portal.models import Component
from portal.permissions import visible_tenants


class GateOpenSerializer(serializers.Serializer):
    open = serializers.BooleanField()
    reason = serializers.ChoiceField(choices=[gate.OPEN])
    detail = serializers.CharField()
    change = serializers.CharField(help_text="The change that covers the deployment (CHG-…).")
    change_id = serializers.IntegerField()
    window_id = serializers.IntegerField()
    window_closes_at = serializers.DateTimeField()


class GateClosedSerializer(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField()
    open = serializers.BooleanField()
    reason = serializers.ChoiceField(choices=gate.REASONS)
    change = serializers.CharField(allow_null=True)
    change_id = serializers.IntegerField(allow_null=True)
    window_id = serializers.IntegerField(allow_null=True)
    window_closes_at = serializers.DateTimeField(allow_null=True)


class _Query(serializers.Serializer):
    component = serializers.CharField(max_length=200)
    tenant = serializers.SlugField(max_length=100)


class GateView(GenericAPIView):
    serializer_class = GateOpenSerializer

    @extend_schema(
        operation_id="gate",
        summary="May this component be deployed for this tenant now?",
        parameters=[
            OpenApiParameter("component", str, required=True, description="A component's name."),
            OpenApiParameter("tenant", str, required=True, description="A tenant's slug."),
        ],
        responses={
            200: GateOpenSerializer,
            423: OpenApiResponse(GateClosedSerializer, description="Closed, with the reason."),
        },
    )
    def get(self, request):
        query = _Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        name, slug = query.validated_data["component"], query.validated_data["tenant"]
        component = Component.objects.filter(name=name).first()
        if component is None:
            # The catalog of components is shared: a missing one is only missing.
            raise Http404("No such component.")
        tenant = visible_tenants(request.user).filter(slug=slug).first()
        if tenant is None:
            raise hidden(request, "tenant", "portal.tenant", slug, action="tenant.hidden")
        verdict = gate.answer(user=request.user, component=component, tenant=tenant)
        if verdict.open:
            return Response(verdict.as_json())
        return problem(
            423,
            verdict.detail,
            request=request,
            kind=f"gate-{verdict.reason.replace('_', '-')}",
            extra=verdict.as_json() | {"detail": verdict.detail},
        )
