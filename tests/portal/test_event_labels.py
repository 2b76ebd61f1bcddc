"""Timelines show words, not event codes (issue 8, item 12): one mapping,
``portal_format.event_label``, used by the change timeline, the report and the audit
trail."""

from __future__ import annotations

import pytest

from portal.audit import audit_record
from portal.templatetags.portal_format import event_label
from tests.factories import ChangeRequestFactory


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("change.procedure_added", "Procedure added"),
        ("change.submitted", "Submitted for review"),
        ("approval.approved", "Approved"),
        ("change.approved", "Change approved"),
        ("approval.delegation_revoked", "Delegation revoked"),
        ("dbops.target.check_refused", "Target check refused"),
        ("auth.login_failed", "Sign-in failed"),
        ("change.in_progress", "In progress"),
        ("heartbeat", "Heartbeat"),
        ("", ""),
    ],
)
def test_it_words_an_event_code(code, words):
    assert event_label(code) == words


def test_with_a_subject_it_names_what_the_event_is_about():
    assert event_label("window.approved", "subject") == "Window: approved"
    assert event_label("change.procedure_added", True) == "Change: procedure added"
    assert event_label("run.step_done", "subject") == "Run: checklist step done"


@pytest.mark.django_db
def test_the_change_timeline_shows_words_not_codes(client, requester, tenant):
    change = ChangeRequestFactory(requester=requester, tenants=[tenant])
    audit_record(action="change.procedure_added", user=requester, obj=change, details={})
    client.force_login(requester)

    body = client.get(change.get_absolute_url()).content.decode()

    assert "Procedure added by requester" in body
    assert "change.procedure_added" not in body


@pytest.mark.django_db
def test_the_audit_trail_words_each_action_and_keeps_its_code_for_the_filter(
    client, compliance, tenant
):
    change = ChangeRequestFactory(tenants=[tenant])
    audit_record(action="change.procedure_added", user=compliance, obj=change, details={})
    client.force_login(compliance)

    body = client.get("/reports/").content.decode()

    assert "Change: procedure added" in body
    assert '<code class="event-code">change.procedure_added</code>' in body
