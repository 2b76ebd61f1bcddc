"""The happy path through the browser forms, with the Django test client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from changes.models import Approval, ChangeRequest, State

pytestmark = pytest.mark.django_db


def _form(tenants, components, **overrides):
    start = (timezone.now() + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M")
    data = {
        "title": "Patch OpenSSL on the edge",
        "description": "CVE fix",
        "type": "SECURITY",
        "priority": "MEDIUM",
        "components": [c.pk for c in components],
        "tenants": [t.pk for t in tenants],
        "proposed_start": start,
        "window_minutes": "60",
        "implementation_plan": "apt upgrade",
        "backout_plan": "apt install previous version",
        "verification_plan": "openssl version",
        "action": "submit",
    }
    data.update(overrides)
    return data


def test_a_requester_files_a_change_and_security_approves_it(
    client, requester, security, tenant, component
):
    client.force_login(requester)
    response = client.post(reverse("changes:create"), _form([tenant], [component]))
    assert response.status_code == 302, response.content.decode()[:2000]
    change = ChangeRequest.objects.get()
    assert change.state == State.IN_REVIEW
    assert change.category == "STANDARD"
    approval = change.approvals.get()
    assert approval.role == "SECURITY"

    client.force_login(security)
    page = client.get(reverse("changes:approvals"))
    assert change.public_id in page.content.decode()
    response = client.post(
        reverse("changes:approval", args=[approval.pk]),
        {"decision": "APPROVED", "comment": "ok", "version": approval.version},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "Approved" in response.content.decode()
    change.refresh_from_db()
    assert change.state == State.APPROVED
    detail = client.get(change.get_absolute_url())
    assert detail.status_code == 200
    assert approval.pk and Approval.objects.get(pk=approval.pk).decided_by == security
