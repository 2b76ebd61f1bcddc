"""Changes and approvals over the API behave as on the pages: the same services, so the
same refusals (403 audited, 404 hidden, 409 stale), problem details for every error,
the change list's filters and keyset pages with bounded queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from changes.models import Approval, ChangeRequest, State
from changes.services import change_submit
from portal.models import AuditEvent
from tests.api.conftest import change_body
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"].startswith("urn:portal:problem:")
    return body


def test_a_pipeline_files_submits_and_an_approver_decides(
    api_as, requester, security, tenant, component
):
    api = api_as(requester)
    created = api.post("/api/changes/", change_body(component, tenant))
    assert created.status_code == 201
    change = created.json()
    assert created["Location"] == f"/api/changes/{change['id']}/"
    assert (change["state"], change["requester"], change["tenants"]) == (
        "draft",
        "requester",
        ["acme"],
    )

    submitted = api.post(f"/api/changes/{change['id']}/submit/", {"version": change["version"]})
    assert submitted.status_code == 200
    body = submitted.json()
    assert (body["state"], body["category"], body["risk_level"]) == ("in_review", "STANDARD", "LOW")
    assert {f["key"] for f in body["risk_factors"]} >= {"priority", "tenants", "conflicts"}
    assert [a["role"] for a in body["approvals"]] == ["SECURITY"]

    approver = api_as(security)
    queue = approver.get("/api/approvals/").json()["results"]
    assert [(a["change"]["public_id"], a["role"]) for a in queue] == [
        (body["public_id"], "SECURITY")
    ]
    decided = approver.post(
        f"/api/approvals/{queue[0]['id']}/decide/",
        {"decision": "APPROVED", "comment": "Fine.", "version": queue[0]["version"]},
    )
    assert decided.status_code == 200 and decided.json()["status"] == "APPROVED"
    assert ChangeRequest.objects.get(pk=change["id"]).state == State.APPROVED
    # The same audit rows as the pages write.
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"change.created", "change.submitted", "approval.approved", "change.approved"} <= actions


def test_a_draft_is_edited_with_its_version_and_a_stale_one_is_a_409(
    api_as, requester, make_change
):
    draft = make_change(title="Old title")
    api = api_as(requester)

    edited = api.patch(f"/api/changes/{draft.pk}/", {"title": "New title", "version": 1})
    stale = api.patch(f"/api/changes/{draft.pk}/", {"title": "Lost update", "version": 1})

    assert edited.status_code == 200 and edited.json()["title"] == "New title"
    body = _problem(stale, 409)
    assert "changed by someone else" in body["detail"]
    assert ChangeRequest.objects.get(pk=draft.pk).title == "New title"


def test_an_update_needs_the_version(api_as, requester, make_change):
    draft = make_change()

    body = _problem(api_as(requester).patch(f"/api/changes/{draft.pk}/", {"title": "x"}), 400)

    assert "version" in body["errors"]


def test_only_the_requester_edits_and_the_refusal_is_audited(api_as, engineer, make_change):
    draft = make_change()

    body = _problem(
        api_as(engineer).patch(f"/api/changes/{draft.pk}/", {"title": "x", "version": 1}), 403
    )

    assert body["detail"] == "Only the requester may do this."
    assert AuditEvent.objects.filter(action="change.edit_refused", outcome="DENIED").count() == 1
    assert ChangeRequest.objects.get(pk=draft.pk).version == 1


def test_another_tenants_change_is_a_404_like_a_missing_one(api_as, outsider, make_change):
    change = make_change()
    api = api_as(outsider)

    hidden = _problem(api.get(f"/api/changes/{change.pk}/"), 404)
    missing = _problem(api.get("/api/changes/999999/"), 404)

    assert hidden["detail"] == missing["detail"] == "No such change."
    assert AuditEvent.objects.filter(action="change.hidden", outcome="DENIED").count() == 2


def test_cancel_and_a_second_cancel_is_a_409(api_as, requester, make_change):
    draft = make_change()
    api = api_as(requester)

    assert api.post(f"/api/changes/{draft.pk}/cancel/", {"reason": "Not needed"}).status_code == 200
    body = _problem(api.post(f"/api/changes/{draft.pk}/cancel/", {}), 409)
    assert "can only be cancelled before" in body["detail"]


def test_bad_input_is_a_400_naming_each_field_and_writes_nothing(
    api_as, requester, tenant, component, other_tenant
):
    api = api_as(requester)
    body = change_body(
        component,
        tenant,
        window_minutes=0,
        proposed_start=(timezone.now() - timedelta(days=1)).isoformat(),
        tenants=[other_tenant.slug],
        type="NOT-A-TYPE",
    )

    problem = _problem(api.post("/api/changes/", body), 400)

    assert set(problem["errors"]) == {"window_minutes", "proposed_start", "tenants", "type"}
    assert "must be in the future" in problem["errors"]["proposed_start"][0]
    assert not ChangeRequest.objects.exists()
    for raw in (b"[1, 2]", b"{not json", b'"text"'):
        response = api.client.post(
            "/api/changes/", raw, content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {api.key}",
        )  # fmt: skip
        assert response.status_code == 400, raw
    assert api.client.post(
        "/api/changes/", "a=b", content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {api.key}",
    ).status_code == 415  # fmt: skip


def test_the_requester_never_decides_their_own_change(api_as, make_user, tenant, component):
    both = make_user("both", ["REQUESTER", "SECURITY"])
    change = ChangeRequestFactory(
        requester=both, tenants=[tenant], components=[component], type="SECURITY", priority="LOW"
    )
    change = change_submit(change=change, by=both)
    approval = change.approvals.get(role="SECURITY")

    body = _problem(
        api_as(both).post(
            f"/api/approvals/{approval.pk}/decide/", {"decision": "APPROVED", "version": 1}
        ),
        403,
    )

    assert body["type"] == "urn:portal:problem:separation-of-duties"
    assert Approval.objects.get(pk=approval.pk).status == "PENDING"
    assert AuditEvent.objects.filter(action="approval.refused", outcome="DENIED").count() == 1


def test_a_rejection_needs_a_comment_and_a_stale_decision_is_a_409(api_as, security, make_change):
    draft = make_change(type="SECURITY", priority="LOW")
    change = change_submit(change=draft, by=draft.requester)
    approval = change.approvals.get()
    api = api_as(security)

    no_comment = _problem(
        api.post(f"/api/approvals/{approval.pk}/decide/", {"decision": "REJECTED", "version": 1}),
        400,
    )
    stale = _problem(
        api.post(f"/api/approvals/{approval.pk}/decide/", {"decision": "APPROVED", "version": 7}),
        409,
    )

    assert no_comment["detail"] == "A rejection needs a comment explaining why."
    assert "changed since you opened it" in stale["detail"]
    assert Approval.objects.get(pk=approval.pk).status == "PENDING"


def test_the_list_takes_the_change_pages_filters(
    api_as, requester, make_change, tenant, other_tenant
):
    make_change(title="Rotate certificates")
    make_change(title="Vacuum claims", type="PERFORMANCE")
    api = api_as(requester)

    def titles(**params):
        response = api.get("/api/changes/", params)
        assert response.status_code == 200, response.content
        return sorted(c["title"] for c in response.json()["results"])

    assert titles() == ["Rotate certificates", "Vacuum claims"]
    assert titles(type="PERFORMANCE") == ["Vacuum claims"]
    assert titles(q="rotate") == ["Rotate certificates"]
    assert titles(tenant="acme", state="draft") == ["Rotate certificates", "Vacuum claims"]
    assert _problem(api.get("/api/changes/", {"tenant": other_tenant.slug}), 400)["errors"][
        "tenant"
    ]
    assert "state" in _problem(api.get("/api/changes/", {"state": "nope"}), 400)["errors"]


def test_keyset_pages_cover_every_row_once_in_bounded_queries(
    api_as, requester, make_change, django_assert_max_num_queries
):
    made = [make_change(title=f"Change {n}").pk for n in range(7)]
    api = api_as(requester)

    seen, url, pages = [], "/api/changes/?limit=3", 0
    while url:
        with django_assert_max_num_queries(14):
            response = api.get(url)
        page = response.json()
        seen += [c["id"] for c in page["results"]]
        url = page["next"]
        pages += 1

    assert pages == 3
    assert seen == sorted(made, reverse=True)
    assert _problem(api.get("/api/changes/", {"cursor": "forged"}), 400)["errors"]["cursor"]
    assert _problem(api.get("/api/changes/", {"limit": "0"}), 400)["errors"]["limit"]


def test_the_list_query_count_does_not_grow_with_rows(
    api_as, requester, make_change, django_assert_max_num_queries
):
    for n in range(40):
        make_change(title=f"Change {n}")
    api = api_as(requester)

    with django_assert_max_num_queries(14):
        assert len(api.get("/api/changes/").json()["results"]) == 40
