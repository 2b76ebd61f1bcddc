"""Changes and approvals over the API: the same selectors, access rules and services as
the change pages, so a refusal, a conflict or an audit row is the same either way."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from api.pagination import KeysetPagination
from api.serializers.changes import (
    ApprovalSerializer,
    CancelSerializer,
    ChangeDetailSerializer,
    ChangeSummarySerializer,
    ChangeUpdateSerializer,
    ChangeWriteSerializer,
    DecisionSerializer,
    PendingApprovalSerializer,
    VersionSerializer,
)
from api.views.common import hidden, valid
from changes import access, selectors, services
from changes.forms import ChangeFilterForm
from changes.models import Approval, ChangeRequest
from portal.permissions import visible_tenants
from portal.roles import APPROVER_ROLES, has_role


def _choices(name: str) -> list[str]:
    return [value for value, _ in ChangeFilterForm.base_fields[name].choices if value]


FILTERS = [
    OpenApiParameter("q", str, description="Words of the title, or a change id (CHG-000123)."),
    OpenApiParameter("state", str, enum=_choices("state")),
    OpenApiParameter("type", str, enum=_choices("type")),
    OpenApiParameter("priority", str, enum=_choices("priority")),
    OpenApiParameter("category", str, enum=_choices("category")),
    OpenApiParameter("tenant", str, description="A tenant's slug."),
    OpenApiParameter("requester", str, description="The requester's username."),
    OpenApiParameter("start_from", OpenApiTypes.DATE, description="Proposed start on or after."),
    OpenApiParameter("start_to", OpenApiTypes.DATE, description="Proposed start on or before."),
]


def get_change(request, pk: int) -> ChangeRequest:
    """404 (audited) for a change the user may not see, as on the change page."""
    change = selectors.visible_change_detail(user=request.user, pk=pk)
    if change is None:
        raise hidden(request, "change", "changes.changerequest", pk, action="change.hidden")
    return change


def change_body(request, change: ChangeRequest) -> dict:
    return ChangeDetailSerializer(
        selectors.change_detail(pk=change.pk), context={"request": request}
    ).data


def _filters(request) -> dict:
    """The change list page's filter form; a tenant is named by its slug here."""
    data = request.query_params.copy()
    slug = data.get("tenant")
    if slug:
        # No slug holds a NUL, and PostgreSQL text could not be compared with one.
        tenant = "\x00" not in slug and visible_tenants(request.user).filter(slug=slug).first()
        if not tenant:
            raise serializers.ValidationError({"tenant": ["No tenant with that slug."]})
        data["tenant"] = str(tenant.pk)
    form = ChangeFilterForm(data, user=request.user)
    if not form.is_valid():
        errors = form.errors.get_json_data()
        raise serializers.ValidationError(
            {name: [e["message"] for e in items] for name, items in errors.items()}
        )
    return form.cleaned_data


class ChangeListView(GenericAPIView):
    pagination_class = KeysetPagination
    keyset = ("-created_at", "-pk")
    serializer_class = ChangeSummarySerializer
    scopes = {"GET": "read", "POST": "write"}

    @extend_schema(
        operation_id="changes_list",
        summary="Changes you may see, newest first, with the change list's filters",
        parameters=FILTERS,
        responses=ChangeSummarySerializer(many=True),
    )
    def get(self, request):
        changes = selectors.change_list(user=request.user, filters=_filters(request))
        changes = changes.prefetch_related("tenants", "components")
        page = self.paginate_queryset(changes)
        data = ChangeSummarySerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(
        operation_id="changes_create",
        summary="File a change request (a draft; submit it next)",
        request=ChangeWriteSerializer,
        responses={201: ChangeDetailSerializer},
    )
    def post(self, request):
        data = valid(ChangeWriteSerializer, request)
        change = services.change_create(
            by=request.user,
            data={k: data[k] for k in services.EDITABLE_FIELDS},
            components=data["components"],
            services=data.get("services", []),
            tenants=data["tenants"],
        )
        return Response(
            change_body(request, change),
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/changes/{change.pk}/"},
        )


class ChangeDetailView(GenericAPIView):
    serializer_class = ChangeDetailSerializer
    scopes = {"GET": "read", "PATCH": "write"}

    @extend_schema(operation_id="changes_retrieve", summary="A change with its risk and approvals")
    def get(self, request, pk: int):
        return Response(change_body(request, get_change(request, pk)))

    @extend_schema(
        operation_id="changes_update",
        summary="Edit a draft (its requester); fields left out keep their values",
        request=ChangeUpdateSerializer,
        responses=ChangeDetailSerializer,
    )
    def patch(self, request, pk: int):
        change = get_change(request, pk)
        data = valid(ChangeUpdateSerializer, request)
        current = {k: getattr(change, k) for k in services.EDITABLE_FIELDS}
        updated = services.change_update(
            change=change,
            by=request.user,
            data={k: data.get(k, current[k]) for k in services.EDITABLE_FIELDS},
            components=data.get("components", list(change.components.all())),
            services=data.get("services", list(change.services.all())),
            tenants=data.get("tenants", list(change.tenants.all())),
            version=data["version"],
        )
        return Response(change_body(request, updated))


class ChangeSubmitView(GenericAPIView):
    serializer_class = ChangeDetailSerializer
    scope = "write"

    @extend_schema(
        operation_id="changes_submit",
        summary="Submit a draft: risk assessment and routing to its review",
        request=VersionSerializer,
        responses=ChangeDetailSerializer,
    )
    def post(self, request, pk: int):
        change = get_change(request, pk)
        data = valid(VersionSerializer, request)
        submitted = services.change_submit(
            change=change, by=request.user, version=data.get("version")
        )
        return Response(change_body(request, submitted))


class ChangeCancelView(GenericAPIView):
    serializer_class = ChangeDetailSerializer
    scope = "write"

    @extend_schema(
        operation_id="changes_cancel",
        summary="Cancel a change before its execution starts (its requester)",
        request=CancelSerializer,
        responses=ChangeDetailSerializer,
    )
    def post(self, request, pk: int):
        change = get_change(request, pk)
        data = valid(CancelSerializer, request)
        cancelled = services.change_cancel(
            change=change,
            by=request.user,
            reason=data.get("reason", ""),
            version=data.get("version"),
        )
        return Response(change_body(request, cancelled))


# --- approvals --------------------------------------------------------------------------


def _require_approver(request) -> None:
    if not (request.user.is_superuser or has_role(request.user, *APPROVER_ROLES)):
        raise PermissionDenied("Only approvers have an approval queue.")


def get_approval(request, pk: int) -> Approval:
    """404 if its change is hidden from the user; 403 if seen but not theirs to decide."""
    approval = selectors.approval_detail(pk=pk)
    if approval is None or not access.can_view_change(request.user, approval.change):
        raise hidden(request, "approval", "changes.approval", pk, action="approval.hidden")
    if not access.may_decide(request.user, approval):
        raise PermissionDenied("You may not decide this approval.")
    return approval


class PendingApprovalsView(GenericAPIView):
    pagination_class = KeysetPagination
    keyset = ("due", "pk")  # the queue's own order (selectors.approval_queue)
    serializer_class = PendingApprovalSerializer

    @extend_schema(
        operation_id="approvals_pending",
        summary="Approvals you may decide now, the soonest due (overdue) first",
        responses=PendingApprovalSerializer(many=True),
    )
    def get(self, request):
        _require_approver(request)
        page = self.paginate_queryset(selectors.approval_queue(request.user))
        return self.get_paginated_response(
            PendingApprovalSerializer(page, many=True, context={"request": request}).data
        )


class ApprovalDetailView(GenericAPIView):
    serializer_class = PendingApprovalSerializer

    @extend_schema(operation_id="approvals_retrieve", summary="An approval you may decide")
    def get(self, request, pk: int):
        return Response(PendingApprovalSerializer(get_approval(request, pk)).data)


class ApprovalDecideView(GenericAPIView):
    serializer_class = ApprovalSerializer
    scope = "decide"

    @extend_schema(
        operation_id="approvals_decide",
        summary="Approve or reject (a rejection needs a comment)",
        request=DecisionSerializer,
        responses=ApprovalSerializer,
    )
    def post(self, request, pk: int):
        approval = get_approval(request, pk)
        data = valid(DecisionSerializer, request)
        decided = services.approval_decide(
            approval=approval,
            by=request.user,
            decision=data["decision"],
            comment=data.get("comment", ""),
            version=data["version"],
        )
        return Response(ApprovalSerializer(decided).data)
