"""Pages keep a fixed number of queries however many changes exist."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from changes.models import Approval, ApprovalGroupObjectPermission, ChangeRequest, State

pytestmark = pytest.mark.django_db

LIST_BOUND = 14
QUEUE_BOUND = 13
DETAIL_BOUND = 22  # includes the maintenance panel


def _bulk_changes(n, *, requester, tenant, component):
    start = timezone.now() + timedelta(days=5)
    changes = ChangeRequest.objects.bulk_create(
        ChangeRequest(
            title=f"Bulk change {i}",
            description="d",
            type="SECURITY",
            priority="LOW",
            proposed_start=start,
            window_minutes=60,
            implementation_plan="i",
            backout_plan="b",
            verification_plan="v",
            requester=requester,
            state=State.IN_REVIEW,
            category="STANDARD",
            risk_level="LOW",
            risk_score=10,
            risk_factors=[
                {"key": "priority", "label": "Priority", "value": "LOW", "points": 0, "why": "Low"}
            ],
        )
        for i in range(n)
    )
    ChangeRequest.tenants.through.objects.bulk_create(
        ChangeRequest.tenants.through(changerequest=c, tenant=tenant) for c in changes
    )
    ChangeRequest.components.through.objects.bulk_create(
        ChangeRequest.components.through(changerequest=c, component=component) for c in changes
    )
    approvals = Approval.objects.bulk_create(
        Approval(change=c, role="SECURITY", due_at=start, required_because="r") for c in changes
    )
    perm = Permission.objects.get(codename="decide_approval")
    group = Group.objects.get(name="SECURITY")
    ApprovalGroupObjectPermission.objects.bulk_create(
        ApprovalGroupObjectPermission(group=group, permission=perm, content_object=a)
        for a in approvals
    )
    return changes


@pytest.fixture(params=[5, 300], ids=["5-changes", "300-changes"])
def many_changes(request, requester, tenant, component, security):
    return _bulk_changes(request.param, requester=requester, tenant=tenant, component=component)


def test_the_change_list_has_bounded_queries(
    client, security, many_changes, django_assert_max_num_queries
):
    client.force_login(security)
    with django_assert_max_num_queries(LIST_BOUND):
        response = client.get(reverse("changes:list"))
    assert response.status_code == 200
    assert many_changes[-1].public_id in response.content.decode()


def test_the_approval_queue_has_bounded_queries(
    client, security, many_changes, django_assert_max_num_queries
):
    client.force_login(security)
    with django_assert_max_num_queries(QUEUE_BOUND):
        response = client.get(reverse("changes:approvals"))
    assert response.status_code == 200
    # Overdue first, then by due time; 50 a page.
    assert response.content.decode().count("Bulk change") == min(len(many_changes), 50)


def test_the_change_detail_has_bounded_queries(
    client, security, many_changes, django_assert_max_num_queries
):
    client.force_login(security)
    with django_assert_max_num_queries(DETAIL_BOUND):
        response = client.get(many_changes[0].get_absolute_url())
    assert response.status_code == 200


def test_the_dashboard_has_bounded_queries(
    client, security, many_changes, django_assert_max_num_queries
):
    client.force_login(security)
    with django_assert_max_num_queries(QUEUE_BOUND):
        response = client.get(reverse("portal:dashboard"))
    assert response.status_code == 200
