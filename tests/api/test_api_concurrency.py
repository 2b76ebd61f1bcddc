"""Concurrent decisions over the API on real PostgreSQL: twenty pipelines posting a
decision on one approval at the same moment make exactly one decision; the others get a
409 problem, never a 500, and the audit trail holds one decision."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connections
from django.test import Client

from api.models import ApiToken
from changes.models import ChangeRequest, State
from changes.services import change_submit
from portal.audit import verify_chain
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _post_together(path: str, body: dict, keys: list[str]) -> list:
    """POST the same JSON with each token, every thread released at the same moment."""
    barrier = threading.Barrier(len(keys))
    responses: list = []

    def post(key: str) -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            responses.append(
                client.post(
                    path,
                    json.dumps(body),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {key}",
                )
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return responses


@pytest.fixture
def approval(make_change):
    change = make_change(type="SECURITY")
    return change_submit(change=change, by=change.requester).approvals.get()


def _decide(approval) -> tuple[str, dict]:
    return (
        f"/api/approvals/{approval.pk}/decide/",
        {"decision": "APPROVED", "comment": "Looks right.", "version": approval.version},
    )


def _statuses(responses) -> list[int]:
    return sorted(r.status_code for r in responses)


def _conflicts_are_problems(responses) -> None:
    for response in responses:
        if response.status_code != 200:
            assert response["Content-Type"] == "application/problem+json"
            body = response.json()
            assert body["status"] == 409 and body["type"] == "urn:portal:problem:conflict"


def test_twenty_approvers_deciding_one_approval_at_once_make_one_decision(
    make_user, token_for, approval
):
    approvers = [make_user(f"sec{n}", ["SECURITY"]) for n in range(20)]
    path, body = _decide(approval)

    responses = _post_together(path, body, [token_for(u, ["decide"]) for u in approvers])

    assert _statuses(responses) == [200] + [409] * 19
    _conflicts_are_problems(responses)
    decided = next(r for r in responses if r.status_code == 200).json()
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by.username) == ("APPROVED", decided["decided_by"])
    assert AuditEvent.objects.filter(action="approval.approved").count() == 1
    assert AuditEvent.objects.filter(action="change.approved").count() == 1
    assert ChangeRequest.objects.get(pk=approval.change_id).state == State.APPROVED
    assert AuditEvent.objects.filter(action="api.token_used").count() == 20
    assert verify_chain().intact


def test_one_approvers_token_sent_twenty_times_at_once_decides_once_and_counts_each_use(
    security, token_for, approval
):
    key = token_for(security, ["decide"])
    path, body = _decide(approval)

    responses = _post_together(path, body, [key] * 20)

    assert _statuses(responses) == [200] + [409] * 19
    _conflicts_are_problems(responses)
    assert AuditEvent.objects.filter(action="approval.approved").count() == 1
    assert ApiToken.objects.get(user=security).window_count == 20
    assert AuditEvent.objects.filter(action="api.token_used").count() == 20
    assert verify_chain().intact
