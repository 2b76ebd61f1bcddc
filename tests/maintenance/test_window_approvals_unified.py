"""Emergency-window approvals run on the changes' approval engine (issue 9, move 5;
issue 8, item 3 for windows): guardian permissions, audited refusals, the stale-form
check on the version field, separation of duties, delegation with revoke and expiry.

Before the restructure ``window_decide`` used string statuses and group checks, had no
stale-form check, no delegation, and raised its refusals without an audit row.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from changes.services import delegations_expire
from changes.services.decisions import end_delegation
from maintenance.models import MaintenanceWindow, WindowApproval
from maintenance.services import (
    emergency_window_request,
    window_approval_decide,
    window_approval_delegate,
)
from maintenance.services.windows import RULES
from portal.errors import Conflict, NotAllowed, SeparationOfDuties
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def window(operator) -> MaintenanceWindow:
    return emergency_window_request(
        by=operator,
        start=timezone.now() + timedelta(minutes=90),
        duration_minutes=60,
        reason="CVE-2026-0002: patch the edge proxies",
    )


def _approval(window, role: str) -> WindowApproval:
    return WindowApproval.objects.select_related("window").get(window=window, role=role)


def _decide_url(approval) -> str:
    return reverse("calendar:window_decide", args=[approval.pk])


def _denied(action: str):
    return AuditEvent.objects.filter(action=action, outcome="DENIED")


# --- stale forms -------------------------------------------------------------------------


def test_a_decision_on_a_stale_form_is_refused_with_409(client, window, cto, ciso):
    approval = _approval(window, "CTO")
    loaded_at = approval.version
    # While the CTO reads the page, the approval changes (a delegation bumps its version).
    window_approval_delegate(approval=approval, by=cto, to_user=_deputy(cto), days=2)
    client.force_login(cto)

    response = client.post(
        _decide_url(approval),
        {"decision": "APPROVED", "comment": "Go", "version": loaded_at},
        **HTMX,
    )

    assert response.status_code == 409
    assert "changed since you opened it" in response.content.decode()
    assert _approval(window, "CTO").status == WindowApproval.Status.PENDING


def test_the_page_carries_the_version_and_a_current_form_decides(client, window, cto):
    approval = _approval(window, "CTO")
    client.force_login(cto)

    page = client.get(window.get_absolute_url()).content.decode()
    response = client.post(
        _decide_url(approval), {"decision": "APPROVED", "version": approval.version}
    )

    assert f'name="version" value="{approval.version}"' in page
    assert response.status_code == 302
    assert _approval(window, "CTO").decided_by == cto


def test_a_damaged_version_is_refused_without_a_decision(client, window, cto):
    approval = _approval(window, "CTO")
    client.force_login(cto)

    response = client.post(_decide_url(approval), {"decision": "APPROVED", "version": "x1"})

    assert response.status_code == 400
    assert _approval(window, "CTO").status == WindowApproval.Status.PENDING


# --- separation of duties, audited ---------------------------------------------------------


def test_the_requester_is_refused_and_the_refusal_is_audited(make_user):
    cto_on_call = make_user("cto-on-call", ["CTO", "OPERATIONS"])
    window = emergency_window_request(
        by=cto_on_call,
        start=timezone.now() + timedelta(minutes=90),
        duration_minutes=30,
        reason="Hotfix",
    )

    with pytest.raises(SeparationOfDuties):
        window_approval_decide(
            approval=_approval(window, "CTO"), by=cto_on_call, decision="APPROVED"
        )

    assert _denied("window.refused").filter(username="cto-on-call").count() == 1
    assert _approval(window, "CTO").status == WindowApproval.Status.PENDING


def test_one_person_decides_one_role_and_the_second_is_audited(window, make_user):
    both = make_user("both-hats", ["CTO", "HEAD_OF_SECURITY"])
    window_approval_decide(approval=_approval(window, "CTO"), by=both, decision="APPROVED")

    with pytest.raises(SeparationOfDuties, match="only one role per window"):
        window_approval_decide(
            approval=_approval(window, "HEAD_OF_SECURITY"), by=both, decision="APPROVED"
        )

    assert _denied("window.refused").count() == 1


def test_someone_without_the_permission_is_refused_and_audited(client, window, security):
    client.force_login(security)

    response = client.post(_decide_url(_approval(window, "CTO")), {"decision": "APPROVED"}, **HTMX)

    assert response.status_code == 403
    assert _denied("window.refused").filter(username="security").count() == 1
    assert not security.has_perm(WindowApproval.permission, _approval(window, "CTO"))


def test_the_role_holds_the_decide_permission_through_guardian(window, cto, ciso):
    assert cto.has_perm(WindowApproval.permission, _approval(window, "CTO"))
    assert not cto.has_perm(WindowApproval.permission, _approval(window, "HEAD_OF_SECURITY"))
    assert ciso.has_perm(WindowApproval.permission, _approval(window, "HEAD_OF_SECURITY"))


# --- delegation ------------------------------------------------------------------------------


def _deputy(holder):
    """Someone who may see windows and decided nothing on this one."""
    from tests.factories import UserFactory

    return UserFactory(username=f"deputy-of-{holder.username}", roles=["ENGINEERING"])


def test_a_window_approval_is_delegated_and_the_delegate_decides(client, window, cto):
    deputy = _deputy(cto)
    client.force_login(cto)
    response = client.post(
        reverse("calendar:window_delegate", args=[_approval(window, "CTO").pk]),
        {"username": deputy.username, "days": 3},
    )
    assert response.status_code == 302

    client.force_login(deputy)
    page = client.get(window.get_absolute_url()).content.decode()
    assert f"Delegated to {deputy.username} by cto" in page
    approval = _approval(window, "CTO")
    response = client.post(
        _decide_url(approval), {"decision": "APPROVED", "version": approval.version}
    )

    assert response.status_code == 302
    approval = _approval(window, "CTO")
    assert (approval.status, approval.decided_by) == (WindowApproval.Status.APPROVED, deputy)
    event = AuditEvent.objects.get(action="window.approved", username=deputy.username)
    assert event.acting_for == cto and event.role == "CTO"


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("nobody", "may not see maintenance windows"),
        ("operator", "You requested this window"),
        ("both", "only one role per window"),
    ],
)
def test_it_refuses_delegates_the_rules_exclude(client, window, cto, make_user, who, message):
    users = {
        "nobody": lambda: make_user("nobody", [], tenants=[]),
        "operator": lambda: window.requested_by,
        "both": lambda: make_user("both", ["HEAD_OF_SECURITY", "SECURITY"]),
    }
    to_user = users[who]()
    if who == "both":
        window_approval_decide(
            approval=_approval(window, "HEAD_OF_SECURITY"), by=to_user, decision="APPROVED"
        )
    client.force_login(cto)

    response = client.post(
        reverse("calendar:window_delegate", args=[_approval(window, "CTO").pk]),
        {"username": to_user.username, "days": 7},
    )

    assert response.status_code == 403
    assert message in response.content.decode()
    assert _approval(window, "CTO").delegated_to is None
    assert _denied("window.delegate_refused").count() == 1


def test_only_the_roles_holder_delegates(client, window, ciso, engineer):
    client.force_login(ciso)

    response = client.post(
        reverse("calendar:window_delegate", args=[_approval(window, "CTO").pk]),
        {"username": engineer.username, "days": 7},
    )

    assert response.status_code == 403
    assert _approval(window, "CTO").delegated_to is None


def test_a_revoked_window_delegate_can_no_longer_decide(client, window, cto):
    deputy = _deputy(cto)
    window_approval_delegate(approval=_approval(window, "CTO"), by=cto, to_user=deputy)
    client.force_login(cto)

    response = client.post(reverse("calendar:window_revoke", args=[_approval(window, "CTO").pk]))

    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="window.delegation_revoked").count() == 1
    with pytest.raises(NotAllowed):
        window_approval_decide(approval=_approval(window, "CTO"), by=deputy, decision="APPROVED")
    assert not deputy.has_perm(WindowApproval.permission, _approval(window, "CTO"))


def test_a_window_delegation_expires(window, cto):
    deputy = _deputy(cto)
    start = timezone.now()
    window_approval_delegate(approval=_approval(window, "CTO"), by=cto, to_user=deputy, days=1)

    with time_machine.travel(start + timedelta(days=1, minutes=1), tick=False):
        with pytest.raises(NotAllowed):
            window_approval_decide(
                approval=_approval(window, "CTO"), by=deputy, decision="APPROVED"
            )
        # Beat's one expiry loop ends window delegations as it does change ones.
        assert delegations_expire() == 1
        assert delegations_expire() == 0

    approval = _approval(window, "CTO")
    assert approval.status == WindowApproval.Status.PENDING and approval.delegated_to is None
    assert not deputy.has_perm(WindowApproval.permission, approval)
    ended = AuditEvent.objects.get(action="window.delegation_expired")
    assert ended.user is None


def test_beat_leaves_a_delegation_renewed_after_it_was_listed(window, cto):
    deputy = _deputy(cto)
    approval = _approval(window, "CTO")
    window_approval_delegate(approval=approval, by=cto, to_user=deputy, days=1)
    later = timezone.now() + timedelta(days=1, minutes=1)

    # What beat listed as expired was renewed (revoked and delegated again) meanwhile.
    with pytest.raises(Conflict, match="renewed"):
        end_delegation(
            model=WindowApproval,
            approval=approval,
            rules=RULES,
            by=None,
            now=later - timedelta(days=2),
            expired=True,
        )

    assert _approval(window, "CTO").delegated_to == deputy


def test_a_decided_window_approval_cannot_be_delegated(window, cto):
    window_approval_decide(approval=_approval(window, "CTO"), by=cto, decision="APPROVED")

    with pytest.raises(Conflict, match="already decided"):
        window_approval_delegate(approval=_approval(window, "CTO"), by=cto, to_user=_deputy(cto))
