"""The audit trail page: its filters, keyset pages, and the chain verified by the worker."""

from __future__ import annotations

import re

import pytest

from compliance.models import ChainVerification
from portal.audit import audit_record, chain_head
from portal.models import AuditEvent
from tests.maintenance.execution_helpers import wait_until


def _sequences(html: str) -> list[int]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [int(n) for n in re.findall(r"<tr class=\"outcome-[a-z]+\">\s*<td>(\d+)</td>", body)]


@pytest.mark.django_db
def test_the_page_filters_by_user_role_action_object_outcome_and_dates(
    client, compliance, requester, security
):
    audit_record(action="change.submitted", user=requester, object_type="x", object_id="CHG-1")
    audit_record(action="approval.approved", user=security, role="SECURITY", object_id="CHG-1")
    audit_record(action="approval.denied", user=requester, role="SECURITY", outcome="DENIED")
    client.force_login(compliance)

    def seqs(**query):
        response = client.get("/reports/", query)
        assert response.status_code == 200
        return [
            AuditEvent.objects.get(sequence=s).action for s in _sequences(response.content.decode())
        ]

    assert seqs(user="security") == ["approval.approved"]
    assert seqs(role="SECURITY", action="approval.") == ["approval.denied", "approval.approved"]
    assert seqs(object="CHG-1") == ["approval.approved", "change.submitted"]
    assert seqs(object="x:CHG-1") == ["change.submitted"]
    assert seqs(outcome="DENIED") == ["approval.denied"]
    today = AuditEvent.objects.latest("sequence").created_at.date().isoformat()
    assert len(seqs(**{"from": today, "to": today})) >= 3
    assert seqs(**{"from": "2001-01-01", "to": "2001-01-02"}) == []


@pytest.mark.django_db
def test_a_bad_filter_says_what_is_wrong_with_a_400(client, compliance):
    client.force_login(compliance)

    response = client.get("/reports/", {"from": "2026-05-02", "to": "2026-05-01"})

    assert response.status_code == 400
    assert "must not be after" in response.content.decode()


@pytest.mark.django_db
def test_keyset_pages_go_back_and_forth_without_gaps(
    client, compliance, django_assert_max_num_queries
):
    for n in range(120):
        audit_record(action="test.page", object_id=str(n))
    client.force_login(compliance)

    first = client.get("/reports/", {"action": "test.page"}).content.decode()
    older = re.search(r'href="\?([^"]*before=(\d+))"', first)
    with django_assert_max_num_queries(16):
        second = client.get(f"/reports/?{older.group(1).replace('&amp;', '&')}").content.decode()
    newer = re.search(r'href="\?([^"]*after=(\d+))"', second)
    back = client.get(f"/reports/?{newer.group(1).replace('&amp;', '&')}").content.decode()

    page1, page2 = _sequences(first), _sequences(second)
    assert len(page1) == len(page2) == 50
    assert page1[-1] - 1 == page2[0]
    assert _sequences(back) == page1
    everything = [e for e in AuditEvent.objects.filter(action="test.page").order_by("-sequence")]
    assert page1 + page2 == [e.sequence for e in everything[:100]]


@pytest.mark.django_db
@pytest.mark.parametrize("user", ["requester", "engineer", "operator", "security", "cto", "ciso"])
def test_the_trail_is_refused_to_other_roles(client, request, user):
    client.force_login(request.getfixturevalue(user))

    assert client.get("/reports/").status_code == 403
    assert client.post("/reports/verify-chain/").status_code == 403
    assert not ChainVerification.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_verify_chain_runs_in_the_worker_and_shows_the_head(celery_worker, client, compliance):
    for n in range(30):
        audit_record(action="test.chain", object_id=str(n))
    client.force_login(compliance)

    started = client.post("/reports/verify-chain/", HTTP_HX_REQUEST="true")
    verification = ChainVerification.objects.get()
    wait_until(
        lambda: ChainVerification.objects.get(pk=verification.pk).finished,
        timeout=30,
        what="the verification to finish",
    )
    fragment = client.get(f"/reports/verify-chain/{verification.pk}/").content.decode()

    assert started.status_code == 200 and 'hx-trigger="every 1s"' in started.content.decode()
    verification.refresh_from_db()
    assert verification.intact is True
    assert verification.checked >= 30
    sequence, head = verification.head_sequence, verification.head_hash
    assert AuditEvent.objects.get(sequence=sequence).hash == head
    assert "Chain intact" in fragment and head in fragment
    assert "every 1s" not in fragment
    assert AuditEvent.objects.filter(action="audit.chain_verified", username="compliance").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_verify_chain_names_the_first_altered_row(
    celery_worker, client, compliance, behind_the_triggers
):
    for n in range(5):
        audit_record(action="test.chain", object_id=str(n))
    target = AuditEvent.objects.get(action="test.chain", object_id="2")
    behind_the_triggers(
        "UPDATE portal_auditevent SET username = 'mallory' WHERE id = %s", [target.pk]
    )
    client.force_login(compliance)

    client.post("/reports/verify-chain/")
    verification = wait_until(
        lambda: ChainVerification.objects.filter(status="DONE").first(),
        timeout=30,
        what="the verification to finish",
    )
    page = client.get("/reports/").content.decode()

    assert verification.intact is False
    assert verification.break_sequence == target.sequence
    assert f"Chain BROKEN at event #{target.sequence}" in page
    assert AuditEvent.objects.filter(action="audit.chain_broken", outcome="FAILURE").exists()


@pytest.mark.django_db
def test_the_page_shows_the_chain_head_and_the_export_links(client, compliance):
    audit_record(action="test.head")
    client.force_login(compliance)

    page = client.get("/reports/", {"action": "test."}).content.decode()

    _sequence, head = chain_head()
    assert head in page
    assert 'href="/reports/audit.csv?action=test."' in page
