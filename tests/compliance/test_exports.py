"""The change register and audit trail downloads: content, filters, visibility, bad input."""

from __future__ import annotations

import pytest

from portal.audit import audit_record
from portal.models import AuditEvent
from tests.compliance.conftest import csv_rows, xlsx_rows

pytestmark = pytest.mark.django_db


def _ids(rows: list[list[str]]) -> list[str]:
    return [row[0] for row in rows[1:]]


def test_the_register_lists_each_change_with_its_approvals_window_and_dates(
    client, compliance, ran_change
):
    client.force_login(compliance)

    response = client.get("/reports/changes.csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="change-register-')
    header, row = csv_rows(response)
    record = dict(zip(header, row, strict=True))
    assert record["ID"] == ran_change.public_id
    assert record["Title"] == "Rotate the claims database password"
    assert (record["Type"], record["Priority"], record["Category"]) == (
        "SECURITY",
        "MEDIUM",
        "STANDARD",
    )
    assert (record["Risk level"], record["Risk score"], record["State"]) == (
        "LOW",
        "12",
        "completed",
    )
    assert record["Outcome"] == "SUCCESSFUL"
    assert record["Tenants"] == "Acme Health"
    assert record["Components"] == "claims-db"
    assert record["Requester"] == "requester"
    assert record["Approvals (role: decision by whom at when)"].startswith(
        "SECURITY: approved by security at "
    )
    assert record["Window"].startswith("Routine window #")
    assert record["Executed (UTC)"].endswith("+00:00")


def test_the_register_filters_as_the_change_list_does(client, compliance, make_change):
    wanted = make_change(title="Patch the edge", type="SECURITY", priority="HIGH")
    make_change(title="Tune the cache", type="PERFORMANCE", priority="HIGH")
    make_change(title="Patch the batch", type="SECURITY", priority="LOW")
    client.force_login(compliance)

    rows = csv_rows(client.get("/reports/changes.csv", {"type": "SECURITY", "priority": "HIGH"}))
    searched = csv_rows(client.get("/reports/changes.csv", {"q": "patch"}))

    assert _ids(rows) == [wanted.public_id]
    assert sorted(r[1] for r in searched[1:]) == ["Patch the batch", "Patch the edge"]


def test_another_tenants_changes_never_appear_in_the_register(
    client, requester, make_change, other_change
):
    mine = make_change(title="Mine")
    client.force_login(requester)

    csv_ids = _ids(csv_rows(client.get("/reports/changes.csv")))
    xlsx = xlsx_rows(client.get("/reports/changes.xlsx").getvalue())

    assert csv_ids == [mine.public_id]
    assert [row[0] for row in xlsx[1:]] == [mine.public_id]
    assert other_change.public_id not in csv_ids


def test_the_register_refuses_a_tenant_the_viewer_may_not_see(
    client, requester, other_tenant, other_change
):
    client.force_login(requester)

    response = client.get("/reports/changes.csv", {"tenant": other_tenant.pk})

    assert response.status_code == 400
    assert "Tenant" in response.content.decode()


@pytest.mark.parametrize(
    "query, named",
    [
        ({"state": "exploded"}, "State"),
        ({"start_from": "yesterday"}, "Start from"),
        ({"type": "<script>"}, "Type"),
    ],
)
def test_a_bad_register_filter_is_a_clear_400(client, compliance, query, named):
    client.force_login(compliance)

    response = client.get("/reports/changes.csv", query)

    assert response.status_code == 400
    body = response.content.decode()
    assert "These filters were not understood" in body and named in body
    assert "<script>" not in body


def test_the_xlsx_register_opens_in_openpyxl_with_the_same_rows(client, compliance, ran_change):
    client.force_login(compliance)

    response = client.get("/reports/changes.xlsx")

    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = xlsx_rows(b"".join(response.streaming_content))
    assert rows[0][0] == "ID" and rows[1][0] == ran_change.public_id
    assert rows[1][1] == "Rotate the claims database password"


def test_a_title_that_looks_like_a_formula_is_kept_as_text(client, compliance, make_change):
    make_change(title='=HYPERLINK("http://evil.example","x")')
    client.force_login(compliance)

    csv_title = csv_rows(client.get("/reports/changes.csv"))[1][1]
    xlsx = xlsx_rows(b"".join(client.get("/reports/changes.xlsx").streaming_content))

    assert csv_title.startswith("'=")
    assert xlsx[1][1] == '=HYPERLINK("http://evil.example","x")'


def test_every_download_is_audited_with_its_filters(client, compliance):
    client.force_login(compliance)

    client.get("/reports/changes.csv", {"type": "SECURITY"})

    event = AuditEvent.objects.get(action="export.changes.downloaded")
    assert event.username == "compliance"
    assert event.details["filters"] == {"type": ["SECURITY"]}


def test_the_audit_export_filters_by_dates_user_action_and_object(client, compliance, requester):
    audit_record(action="test.alpha", user=requester, object_type="thing", object_id="7")
    audit_record(action="test.beta", user=requester, object_type="thing", object_id="8")
    audit_record(action="test.alpha", user=compliance, object_type="thing", object_id="7")
    client.force_login(compliance)

    by_user = csv_rows(client.get("/reports/audit.csv", {"user": "requester", "action": "test."}))
    by_object = csv_rows(client.get("/reports/audit.csv", {"object": "thing:7"}))
    today = AuditEvent.objects.latest("sequence").created_at.date().isoformat()
    dated = csv_rows(client.get("/reports/audit.csv", {"from": today, "to": today}))
    none = csv_rows(client.get("/reports/audit.csv", {"from": "2001-01-01", "to": "2001-12-31"}))

    assert [(r[2], r[5]) for r in by_user[1:]] == [
        ("requester", "test.alpha"),
        ("requester", "test.beta"),
    ]
    assert [(r[2], r[7]) for r in by_object[1:]] == [("requester", "7"), ("compliance", "7")]
    assert len(dated) - 1 >= 3
    assert none == [none[0]]


def test_the_audit_export_carries_each_events_hashes(client, compliance, requester):
    event = audit_record(action="test.hashed", user=requester)
    client.force_login(compliance)

    rows = csv_rows(client.get("/reports/audit.csv", {"action": "test.hashed"}))

    header = rows[0]
    record = dict(zip(header, rows[1], strict=True))
    assert (record["Previous hash"], record["Hash"]) == (event.prev_hash, event.hash)


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-13-01"},
        {"from": "2026-05-02", "to": "2026-05-01"},
        {"outcome": "MAYBE"},
        {"object": "type:"},
    ],
)
def test_a_bad_audit_filter_is_a_clear_400(client, compliance, query):
    client.force_login(compliance)

    response = client.get("/reports/audit.csv", query)

    assert response.status_code == 400
    assert "These filters were not understood" in response.content.decode()


@pytest.mark.parametrize("user", ["requester", "security", "cto", "outsider"])
def test_the_audit_export_is_refused_to_everyone_but_compliance(client, request, user):
    client.force_login(request.getfixturevalue(user))

    response = client.get("/reports/audit.xlsx")

    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="export.audit", outcome="DENIED").count() == 1


def test_the_audit_xlsx_is_a_workbook_of_the_events(client, compliance, requester):
    audit_record(action="test.sheet", user=requester)
    client.force_login(compliance)

    rows = xlsx_rows(
        b"".join(client.get("/reports/audit.xlsx", {"action": "test.sheet"}).streaming_content)
    )

    assert rows[0][:6] == [
        "Sequence",
        "When (UTC)",
        "User",
        "Role",
        "Acting for (user id)",
        "Action",
    ]
    assert [(r[2], r[5]) for r in rows[1:]] == [("requester", "test.sheet")]


def test_the_register_reads_a_bounded_number_of_queries_whatever_the_rows(
    client, compliance, make_change, django_assert_max_num_queries
):
    for n in range(30):
        make_change(title=f"Change {n}")
    client.force_login(compliance)

    with django_assert_max_num_queries(20):
        rows = csv_rows(client.get("/reports/changes.csv"))

    assert len(rows) == 31
