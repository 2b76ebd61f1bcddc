"""Emergency windows: requested at least 60 minutes ahead for at most 120 minutes, and
approved by the CTO and the Head of Security under the changes' separation of duties."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from maintenance.models import MaintenanceWindow, WindowApproval, WindowType
from maintenance.services import emergency_window_request, window_approval_decide
from portal.errors import Conflict, Invalid, NotAllowed, SeparationOfDuties
from portal.models import AuditEvent, Notification, UserPreference

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _request(by, *, ahead=timedelta(minutes=90), minutes=60, reason="CVE-2026-0001 hotfix"):
    return emergency_window_request(
        by=by, start=timezone.now() + ahead, duration_minutes=minutes, reason=reason
    )


def _approval(window, role) -> WindowApproval:
    return WindowApproval.objects.get(window=window, role=role)


def _decide(window, role, by, decision="APPROVED", comment=""):
    return window_approval_decide(
        approval=_approval(window, role), by=by, decision=decision, comment=comment
    )


def _status(window) -> str:
    return MaintenanceWindow.objects.get(pk=window.pk).status


# --- the rules, at the service ---------------------------------------------------------


def test_a_request_awaits_the_cto_and_the_head_of_security(operator, cto, ciso):
    window = _request(operator)

    assert window.type == WindowType.EMERGENCY
    assert window.status == MaintenanceWindow.Status.PENDING_APPROVAL
    assert window.notification_offsets == [60]
    assert sorted(window.approvals.values_list("role", "status")) == [
        ("CTO", "PENDING"),
        ("HEAD_OF_SECURITY", "PENDING"),
    ]
    asked = Notification.objects.filter(dedup_key=f"window:{window.pk}:approval")
    assert sorted(asked.values_list("recipient__username", flat=True)) == ["ciso", "cto"]


def test_it_refuses_a_start_less_than_sixty_minutes_ahead(operator):
    with pytest.raises(Invalid, match="at least 60 minutes ahead"):
        _request(operator, ahead=timedelta(minutes=59))
    assert not MaintenanceWindow.objects.exists()


def test_it_refuses_more_than_one_hundred_twenty_minutes(operator):
    with pytest.raises(Invalid, match="1 to 120 minutes"):
        _request(operator, minutes=121)
    _request(operator, minutes=120)  # the limit itself is fine
    assert MaintenanceWindow.objects.count() == 1


def test_it_refuses_a_request_without_a_reason(operator):
    with pytest.raises(Invalid, match="Say why"):
        _request(operator, reason="   ")


def test_both_approvals_plan_the_window(operator, cto, ciso):
    window = _request(operator)

    _decide(window, "CTO", cto)
    assert _status(window) == MaintenanceWindow.Status.PENDING_APPROVAL
    _decide(window, "HEAD_OF_SECURITY", ciso)

    assert _status(window) == MaintenanceWindow.Status.PLANNED
    assert AuditEvent.objects.filter(action="window.approved").count() == 2


def test_one_rejection_rejects_the_window(operator, cto, ciso):
    window = _request(operator)

    _decide(window, "CTO", cto)
    _decide(window, "HEAD_OF_SECURITY", ciso, "REJECTED", "Wait for the vendor patch.")

    assert _status(window) == MaintenanceWindow.Status.REJECTED
    assert _approval(window, "HEAD_OF_SECURITY").comments == "Wait for the vendor patch."


def test_a_rejection_needs_a_comment(operator, cto):
    window = _request(operator)
    with pytest.raises(Invalid, match="needs a comment"):
        _decide(window, "CTO", cto, "REJECTED", "  ")
    assert _approval(window, "CTO").status == WindowApproval.Status.PENDING


def test_the_requester_cannot_approve_their_own_window(make_user, ciso):
    cto_on_call = make_user("cto-on-call", ["CTO", "OPERATIONS"])
    window = _request(cto_on_call)

    with pytest.raises(SeparationOfDuties, match="You requested this window"):
        _decide(window, "CTO", cto_on_call)
    assert _approval(window, "CTO").status == WindowApproval.Status.PENDING


def test_one_person_fills_only_one_role(make_user, operator):
    both = make_user("both-hats", ["CTO", "HEAD_OF_SECURITY"])
    window = _request(operator)
    _decide(window, "CTO", both)

    with pytest.raises(SeparationOfDuties, match="only one role per window"):
        _decide(window, "HEAD_OF_SECURITY", both)
    assert _status(window) == MaintenanceWindow.Status.PENDING_APPROVAL


def test_only_the_role_decides_its_approval(operator, security):
    window = _request(operator)
    with pytest.raises(NotAllowed, match="You may not decide the CTO approval"):
        _decide(window, "CTO", security)


def test_a_decided_approval_cannot_be_decided_again(operator, cto):
    window = _request(operator)
    _decide(window, "CTO", cto)
    with pytest.raises(Conflict, match="already approved by cto"):
        _decide(window, "CTO", cto, "REJECTED", "Changed my mind")


# --- the request form ------------------------------------------------------------------


def _form(**data):
    return {"start": "", "duration_minutes": "60", "reason": "CVE hotfix", **data}


def test_the_request_form_reads_the_start_in_the_users_time_zone(client, operator, cto):
    UserPreference.objects.create(user=operator, timezone="America/New_York")
    client.force_login(operator)
    local = (timezone.now() + timedelta(hours=3)).astimezone(ZoneInfo("America/New_York"))

    response = client.post(
        reverse("calendar:emergency_new"), _form(start=local.strftime("%Y-%m-%dT%H:%M"))
    )

    window = MaintenanceWindow.objects.get()
    assert response.status_code == 302
    assert response["Location"] == window.get_absolute_url()
    assert window.start == local.replace(second=0, microsecond=0)
    assert window.start.utcoffset() == timedelta(0)
    assert window.requested_by == operator and window.duration_minutes == 60


def test_the_request_form_says_when_the_start_is_too_soon(client, operator):
    client.force_login(operator)
    soon = timezone.localtime() + timedelta(minutes=30)

    response = client.post(
        reverse("calendar:emergency_new"), _form(start=soon.strftime("%Y-%m-%dT%H:%M"))
    )

    assert response.status_code == 400
    assert "starts at least 60 minutes ahead" in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


def test_the_request_form_says_the_window_is_too_long(client, operator):
    client.force_login(operator)
    later = timezone.localtime() + timedelta(hours=2)

    response = client.post(
        reverse("calendar:emergency_new"),
        _form(start=later.strftime("%Y-%m-%dT%H:%M"), duration_minutes="121"),
    )

    assert response.status_code == 400
    assert "lasts at most 120 minutes" in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"start": "tomorrow"}, "Enter the start as a date and time"),
        ({"start": "2026-13-45T99:99"}, "Enter the start as a date and time"),
        ({"duration_minutes": "ninety"}, "whole number of minutes"),
        ({"duration_minutes": "0"}, "greater than or equal to 1"),
        ({"reason": "   "}, "Say why the emergency window is needed"),
        ({"start": "2099-01-01T10:00"}, "starts within 90 days"),
    ],
)
def test_the_request_form_refuses_bad_input_clearly(client, operator, data, message):
    client.force_login(operator)
    start = (timezone.localtime() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")

    response = client.post(reverse("calendar:emergency_new"), _form(**{"start": start, **data}))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


def test_a_compliance_officer_may_not_request_a_window(client, compliance):
    client.force_login(compliance)
    assert client.get(reverse("calendar:emergency_new")).status_code == 403


def test_a_requester_may_request_a_window_and_lands_on_its_page(client, requester):
    client.force_login(requester)
    start = (timezone.localtime() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")

    response = client.post(reverse("calendar:emergency_new"), _form(start=start))

    window = MaintenanceWindow.objects.get()
    assert response.status_code == 302
    assert response["Location"] == window.get_absolute_url()
    assert window.requested_by == requester


def test_the_request_form_opens_for_an_engineer(client, engineer):
    client.force_login(engineer)
    response = client.get(reverse("calendar:emergency_new"))
    assert response.status_code == 200
    assert "at most 120 minutes" in response.content.decode()


# --- deciding on the window page -------------------------------------------------------


def _decide_url(window, role) -> str:
    return reverse("calendar:window_decide", args=[_approval(window, role).pk])


def test_the_window_page_offers_the_cto_the_decision(client, operator, cto):
    window = _request(operator)
    client.force_login(cto)

    page = client.get(window.get_absolute_url()).content.decode()

    assert 'data-testid="window-approvals"' in page
    assert _decide_url(window, "CTO") in page
    assert _decide_url(window, "HEAD_OF_SECURITY") not in page


def test_the_window_page_tells_the_requester_why_they_cannot_decide(client, make_user):
    cto_on_call = make_user("cto-on-call", ["CTO", "OPERATIONS"])
    window = _request(cto_on_call)
    client.force_login(cto_on_call)

    page = client.get(window.get_absolute_url()).content.decode()

    assert "You requested this window, so you cannot approve it." in page
    assert _decide_url(window, "CTO") not in page


def test_approving_through_htmx_answers_with_the_updated_approvals(client, operator, cto, ciso):
    window = _request(operator)
    _decide(window, "CTO", cto)
    client.force_login(ciso)

    response = client.post(
        _decide_url(window, "HEAD_OF_SECURITY"),
        {"decision": "APPROVED", "comment": "Go"},
        **HTMX,
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "window-decided"
    assert "Your decision is recorded. The window is planned." in body
    assert _status(window) == MaintenanceWindow.Status.PLANNED


def test_approving_without_htmx_goes_back_to_the_window(client, operator, cto):
    window = _request(operator)
    client.force_login(cto)

    response = client.post(_decide_url(window, "CTO"), {"decision": "APPROVED"})

    assert response.status_code == 302
    assert response["Location"] == window.get_absolute_url()
    assert _approval(window, "CTO").decided_by == cto


def test_the_requester_deciding_gets_403_with_the_reason(client, make_user):
    cto_on_call = make_user("cto-on-call", ["CTO", "OPERATIONS"])
    window = _request(cto_on_call)
    client.force_login(cto_on_call)

    response = client.post(_decide_url(window, "CTO"), {"decision": "APPROVED"}, **HTMX)

    assert response.status_code == 403
    assert "You requested this window, so you cannot approve it." in response.content.decode()
    assert _approval(window, "CTO").status == WindowApproval.Status.PENDING


def test_a_second_role_for_the_same_person_gets_403(client, make_user, operator):
    both = make_user("both-hats", ["CTO", "HEAD_OF_SECURITY"])
    window = _request(operator)
    _decide(window, "CTO", both)
    client.force_login(both)

    response = client.post(_decide_url(window, "HEAD_OF_SECURITY"), {"decision": "APPROVED"})

    assert response.status_code == 403
    assert "one person may fill only one role per window." in response.content.decode()


def test_a_stale_decision_gets_409(client, operator, cto, ciso):
    window = _request(operator)
    _decide(window, "CTO", cto)
    _decide(window, "HEAD_OF_SECURITY", ciso, "REJECTED", "No")
    client.force_login(cto)

    response = client.post(_decide_url(window, "CTO"), {"decision": "APPROVED"}, **HTMX)

    assert response.status_code == 409
    assert "already approved by" in response.content.decode()


def test_a_rejection_without_comment_is_refused_on_the_form(client, operator, cto):
    window = _request(operator)
    client.force_login(cto)

    response = client.post(_decide_url(window, "CTO"), {"decision": "REJECTED"}, **HTMX)

    assert response.status_code == 400
    assert "A rejection needs a comment explaining why." in response.content.decode()
    assert _approval(window, "CTO").status == WindowApproval.Status.PENDING


def test_someone_without_the_role_gets_403(client, operator, security):
    window = _request(operator)
    client.force_login(security)

    response = client.post(_decide_url(window, "CTO"), {"decision": "APPROVED"})

    assert response.status_code == 403
    assert "You may not decide the CTO approval." in response.content.decode()


def test_a_requester_only_user_may_not_decide(client, operator, requester):
    window = _request(operator)
    client.force_login(requester)
    response = client.post(_decide_url(window, "CTO"), {"decision": "APPROVED"})
    assert response.status_code == 403


def test_an_unknown_approval_is_404(client, cto):
    client.force_login(cto)
    url = reverse("calendar:window_decide", args=[999999])
    assert client.post(url, {"decision": "APPROVED"}).status_code == 404


def test_deciding_needs_a_post(client, operator, cto):
    window = _request(operator)
    client.force_login(cto)
    assert client.get(_decide_url(window, "CTO")).status_code == 405
