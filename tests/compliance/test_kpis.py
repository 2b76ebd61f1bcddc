"""KPIs per month over the changes the viewer may see, with SVG charts and CSVs."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from changes.models import Category, State
from compliance.kpis import kpis, percentile
from maintenance.models import (
    MaintenanceExecution,
    MaintenanceIssue,
    MaintenanceWindow,
    WindowType,
)
from tests.factories import ComponentFactory

pytestmark = pytest.mark.django_db
RANGE = {"start": "2025-01", "end": "2025-03"}


def at(month: int, day: int = 10, hour: int = 12) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


@pytest.fixture
def history(make_change, other_change):
    api, db = ComponentFactory(name="claims-api"), ComponentFactory(name="claims-db")

    def executed(month, outcome, state, component, **kw):
        return make_change(
            components=[component],
            outcome=outcome,
            state=state,
            executed_at=at(month),
            **kw,
        )

    executed(1, "SUCCESSFUL", State.COMPLETED, api)
    executed(1, "SUCCESSFUL", State.CLOSED, api)
    executed(1, "FAILED", State.ROLLED_BACK, db)
    executed(2, "SUCCESSFUL", State.COMPLETED, api)
    executed(2, "FAILED", State.FAILED, api)
    for category, hours in [
        (Category.STANDARD, 1),
        (Category.STANDARD, 2),
        (Category.EMERGENCY, 3),
        (Category.URGENT, 10),
    ]:
        make_change(
            category=category,
            state=State.APPROVED,
            submitted_at=at(1, 5),
            decided_at=at(1, 5) + timedelta(hours=hours),
        )
    # Another tenant's failure: counted for Compliance, never for our tenant's CTO.
    other = other_change
    type(other).objects.filter(pk=other.pk).update(
        outcome="FAILED", state=State.FAILED, executed_at=at(1)
    )
    window = MaintenanceWindow.objects.create(
        type=WindowType.ROUTINE, start=at(2), duration_minutes=60, notification_offsets=[60]
    )
    execution = MaintenanceExecution.objects.create(window=window, planned_at=at(2))
    issue = MaintenanceIssue.objects.create(
        execution=execution, kind=MaintenanceIssue.Kind.OVERRUN, message="Ran 20 min over"
    )
    MaintenanceIssue.objects.filter(pk=issue.pk).update(created_at=at(2))


def _kpi(user, key):
    _months, items = kpis(user, start=datetime(2025, 1, 1).date(), end=datetime(2025, 3, 1).date())
    return next(k for k in items if k.key == key)


def test_the_success_rate_is_per_month_of_execution(history, compliance):
    kpi = _kpi(compliance, "success-rate")

    assert kpi.rows == [
        ["2025-01", 4, 2, 2, 50.0],
        ["2025-02", 2, 1, 1, 50.0],
        ["2025-03", 0, 0, 0, None],
    ]


def test_another_tenants_changes_never_count_for_someone_who_cannot_see_them(history, cto):
    kpi = _kpi(cto, "success-rate")

    assert kpi.rows[0] == ["2025-01", 3, 2, 1, 66.7]


def test_emergency_and_urgent_share_of_submissions(history, compliance):
    kpi = _kpi(compliance, "emergency-share")

    assert kpi.rows[0] == ["2025-01", 4, 2, 1, 1, 25.0, 25.0]


def test_approval_lead_time_median_and_p90(history, compliance):
    kpi = _kpi(compliance, "approval-lead-time")

    assert kpi.rows[0] == ["2025-01", 4, 2.5, 7.9]
    assert percentile([1, 2, 3, 10], 0.9) == pytest.approx(7.9)


def test_overruns_and_failures_by_component(history, compliance):
    overruns = _kpi(compliance, "overruns")
    failures = _kpi(compliance, "failures-by-component")

    assert [r[1] for r in overruns.rows] == [0, 1, 0]
    assert ["claims-db", "2025-01", 0, 1] in failures.rows
    assert ["claims-api", "2025-02", 1, 0] in failures.rows
    assert ["globex-db", "2025-01", 1, 0] in failures.rows


def test_the_page_draws_each_kpi_as_svg_with_its_table_and_no_script(client, history, compliance):
    client.force_login(compliance)

    response = client.get("/reports/kpis/", RANGE)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 5
    assert "<rect" in html and "<script>" not in html and "style=" not in html.split("<main", 1)[1]
    for key in ("success-rate", "emergency-share", "approval-lead-time", "overruns"):
        assert f'href="/reports/kpis/{key}.csv?start=2025-01&amp;end=2025-03"' in html


def test_each_kpi_has_a_csv_of_its_table(client, history, compliance):
    client.force_login(compliance)

    response = client.get("/reports/kpis/success-rate.csv", RANGE)

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert rows[0] == ["Month", "Executed", "Successful", "Failed", "Success rate (%)"]
    assert rows[1] == ["2025-01", "4", "2", "2", "50.0"]


@pytest.mark.parametrize(
    "query", [{"start": "2025-13"}, {"start": "2025-05", "end": "2025-01"}, {"end": "soon"}]
)
def test_bad_months_are_a_clear_400(client, compliance, query):
    client.force_login(compliance)

    page = client.get("/reports/kpis/", query)
    data = client.get("/reports/kpis/overruns.csv", query)

    assert page.status_code == data.status_code == 400
    assert "These months were not understood" in page.content.decode()


@pytest.mark.parametrize("user", ["requester", "engineer", "operator", "security", "outsider"])
def test_the_kpis_are_refused_to_roles_without_them(client, request, user):
    client.force_login(request.getfixturevalue(user))

    assert client.get("/reports/kpis/").status_code == 403
    assert client.get("/reports/kpis/overruns.csv").status_code == 403


def test_an_unknown_kpi_is_a_404(client, compliance):
    client.force_login(compliance)

    assert client.get("/reports/kpis/happiness.csv").status_code == 404
