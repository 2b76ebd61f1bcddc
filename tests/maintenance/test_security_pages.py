"""The Patch compliance page: worst first, filterable, keyset-paginated with bounded
queries, exported as a streamed CSV; and "Propose security update" filing a draft
SECURITY change with its procedure filled in."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from changes.models import ChangeRequest
from maintenance.security import advisories
from maintenance.security.inventory import exposures_refresh
from maintenance.security.models import Advisory, Exposure
from maintenance.security.spec import updates_of
from maintenance.security.versions import PYPI
from tests.maintenance.security_support import (
    executor_for,
    inventoried,
    osv_bytes,
    osv_record,
    write_executables,
)

pytestmark = pytest.mark.django_db
COMPLIANCE = "maintenance:security:compliance"


def _advise(osv_id: str, package: str, fixed: str, severity: str = "HIGH", **kwargs):
    advisories.advisories_import(
        data=osv_bytes(
            osv_record(
                osv_id, ecosystem="PyPI", name=package, fixed=fixed, severity=severity, **kwargs
            )
        ),
        name=f"{osv_id}.json",
    )


@pytest.fixture
def estate(tenant, other_tenant):
    """Two components of ours and one of another tenant, with five open exposures."""
    old = datetime(2024, 1, 1, tzinfo=UTC)
    ours = inventoried(
        "billing-api",
        {(PYPI, "tinypkg"): "1.0", (PYPI, "jinja2"): "3.1.2"},
        tenants=[tenant],
        since=old,
    )
    shared = inventoried("reports-worker", {(PYPI, "jinja2"): "3.1.2"}, since=old)
    theirs = inventoried(
        "globex-api", {(PYPI, "tinypkg"): "1.0"}, tenants=[other_tenant], since=old
    )
    _advise("GHSA-tiny-0001-abcd", "tinypkg", "1.1", "CRITICAL", aliases=("CVE-2099-0001",))
    recent = (timezone.now() - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _advise("GHSA-jinj-0002-abcd", "jinja2", "3.1.4", "MEDIUM", published=recent)
    _advise("PYSEC-2099-3", "jinja2", "3.1.3", "LOW", published="2024-02-01T00:00:00Z")
    return ours, shared, theirs


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-testid="exposure-\d+">.*?</tr>', html, flags=re.DOTALL)


def _ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-testid="exposure-(\d+)">', html)]


def test_the_page_lists_open_advisories_worst_first_for_the_components_one_may_see(
    client, security, estate
):
    client.force_login(security)

    html = client.get(reverse(COMPLIANCE)).content.decode()

    assert "globex-api" not in html
    order = [
        e.advisory.osv_id
        for e in Exposure.objects.filter(
            executor__component__name__in=["billing-api", "reports-worker"]
        ).order_by("-severity_rank", "exposed_since", "pk")
    ]
    positions = [html.index(osv_id) for osv_id in dict.fromkeys(order)]
    assert positions == sorted(positions)
    assert "Critical: 1" in html and "Medium: 2" in html and "Low: 2" in html
    assert "CVE-2099-0001" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"severity": "CRITICAL"}, {"GHSA-tiny-0001-abcd"}),
        ({"q": "jinja"}, {"GHSA-jinj-0002-abcd", "PYSEC-2099-3"}),
        ({"q": "CVE-2099-0001"}, {"GHSA-tiny-0001-abcd"}),
        ({"ecosystem": "PostgreSQL-extension"}, set()),
        ({"min_days": "365"}, {"GHSA-tiny-0001-abcd", "PYSEC-2099-3"}),
    ],
)
def test_the_page_filters(client, compliance, estate, query, expected):
    client.force_login(compliance)

    html = client.get(reverse(COMPLIANCE), query).content.decode()

    shown = {a.osv_id for a in Advisory.objects.all() if a.osv_id in "".join(_rows(html))}
    assert shown == expected


def test_the_component_filter_offers_only_visible_components(client, operator, estate):
    ours, _shared, theirs = estate
    client.force_login(operator)

    html = client.get(reverse(COMPLIANCE), {"component": ours.component_id}).content.decode()
    refused = client.get(reverse(COMPLIANCE), {"component": theirs.component_id})

    assert "reports-worker" not in "".join(_rows(html)) and "billing-api" in "".join(_rows(html))
    assert refused.status_code == 400
    assert "Select a valid choice" in refused.content.decode()


@pytest.mark.parametrize("query", [{"severity": "URGENT"}, {"min_days": "-1"}, {"min_days": "x"}])
def test_bad_filters_answer_400_with_the_reason(client, security, estate, query):
    client.force_login(security)

    response = client.get(reverse(COMPLIANCE), query)

    assert response.status_code == 400
    assert 'class="errorlist"' in response.content.decode()


@pytest.mark.parametrize("count", [5, 120])
def test_pages_follow_the_keyset_with_bounded_queries(
    client, security, tenant, count, django_assert_max_num_queries
):
    start = timezone.now() - timedelta(days=400)
    for i in range(count):
        inventoried(
            f"svc-{i:03d}",
            {(PYPI, "tinypkg"): "1.0"},
            tenants=[tenant],
            since=start + timedelta(hours=i),
        )
    _advise("GHSA-tiny-0001-abcd", "tinypkg", "1.1", published="2023-01-01T00:00:00Z")
    client.force_login(security)
    seen: list[str] = []
    url = reverse(COMPLIANCE)
    while url:
        with django_assert_max_num_queries(14):
            response = client.get(url)
        html = response.content.decode()
        seen += _ids(html)
        marker = 'href="?after='
        url = (
            reverse(COMPLIANCE) + "?after=" + html.split(marker)[1].split('"')[0]
            if marker in html
            else ""
        )
        url = url.replace("&amp;", "&")
    assert len(seen) == len(set(seen)) == count
    assert seen == [e.pk for e in Exposure.objects.order_by("exposed_since", "pk")]


def test_an_unreadable_cursor_starts_at_the_first_page(client, security, estate):
    client.force_login(security)

    response = client.get(reverse(COMPLIANCE), {"after": "%%%not-a-cursor"})

    assert response.status_code == 200 and len(_rows(response.content.decode())) == 5


def test_the_csv_is_streamed_with_the_same_rows_and_no_formulas(client, security, estate):
    _advise("GHSA-evil-0004-abcd", "tinypkg", "1.1", summary='=HYPERLINK("http://x")')
    client.force_login(security)

    response = client.get(reverse("maintenance:security:compliance_csv"), {"q": "tinypkg"})

    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["component", "ecosystem", "package"]
    assert {r[4] for r in rows[1:]} == {"GHSA-tiny-0001-abcd", "GHSA-evil-0004-abcd"}
    assert all(r[0] == "billing-api" for r in rows[1:])
    assert '\'=HYPERLINK("http://x")' in [r[10] for r in rows[1:]]


# --- proposing -------------------------------------------------------------------------


@pytest.fixture
def scripted(tmp_path, settings, tenant):
    """billing-api managed by allow-listed scripts, so planning an update is cheap."""
    scripts = write_executables(
        tmp_path / "scripts",
        {
            "inv.sh": '#!/bin/sh\necho "tinypkg==1.0"\necho "jinja2==3.1.2"\n',
            "noop.sh": "#!/bin/sh\nexit 0\n",
        },
    )
    settings.MAINTENANCE_SCRIPTS_DIR = str(scripts)
    row = executor_for(
        "billing-api",
        "script",
        {
            "ecosystem": "PyPI",
            "discover": "inv.sh",
            "backup": "noop.sh",
            "patch": "noop.sh",
            "verify": "noop.sh",
            "rollback": "noop.sh",
        },
        tenants=[tenant],
    )
    from maintenance.security.inventory import inventory_refresh

    inventory_refresh(executor=row)
    _advise("GHSA-jinj-0002-abcd", "jinja2", "3.1.4", "MEDIUM")
    _advise("PYSEC-2099-3", "jinja2", "3.1.3", "HIGH")
    return row


def test_proposing_files_a_draft_security_change_with_the_procedure_filled_in(
    client, operator, scripted
):
    exposure = Exposure.objects.filter(package="jinja2").first()
    client.force_login(operator)

    response = client.post(reverse("maintenance:security:propose", args=[exposure.pk]))

    change = ChangeRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == change.get_absolute_url()
    assert (change.type, change.state, change.requester) == ("SECURITY", "draft", operator)
    assert change.priority == "MEDIUM"  # the worst open advisory is HIGH: a routine patch
    assert list(change.components.all()) == [scripted.component]
    [procedure] = change.procedures.all()
    [update] = updates_of(procedure.params)
    # One update fixes both advisories: the newest of their fixed versions.
    assert (update.package, update.current_version, update.target_version) == (
        "jinja2",
        "3.1.2",
        "3.1.4",
    )
    assert {p.id for p in update.patches} == {"GHSA-jinj-0002-abcd", "PYSEC-2099-3"}
    assert "GHSA-jinj-0002-abcd" in change.description
    assert change.backout_plan == update.rollback


def test_compliance_may_read_but_not_propose(client, compliance, scripted):
    exposure = Exposure.objects.first()
    client.force_login(compliance)

    page = client.get(reverse(COMPLIANCE)).content.decode()
    response = client.post(reverse("maintenance:security:propose", args=[exposure.pk]))

    assert "Propose security update" not in page
    assert response.status_code == 403
    assert not ChangeRequest.objects.exists()


def test_a_proposal_without_a_known_fix_is_refused(client, security, scripted):
    _advise("GHSA-tiny-0005-abcd", "tinypkg", None)
    exposure = Exposure.objects.get(package="tinypkg")
    exposures_refresh(executor=scripted)
    client.force_login(security)

    response = client.post(reverse("maintenance:security:propose", args=[exposure.pk]))

    assert response.status_code == 400
    assert "No fixed version is known for GHSA-tiny-0005-abcd" in response.content.decode()
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize("count", [3, 40])
def test_the_advisory_list_has_bounded_queries(
    client, security, count, django_assert_max_num_queries
):
    for i in range(count):
        _advise(f"GHSA-many-{i:04d}-abcd", f"pkg{i}", "1.1")
    client.force_login(security)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("maintenance:security:advisories"))

    assert response.status_code == 200 and "GHSA-many-0000-abcd" in response.content.decode()


@pytest.mark.parametrize("count", [3, 60])
def test_the_component_page_has_bounded_queries(
    client, operator, tenant, count, django_assert_max_num_queries
):
    row = inventoried(
        "billing-api", {(PYPI, f"pkg{i}"): "1.0" for i in range(count)}, tenants=[tenant]
    )
    for i in range(count):
        _advise(f"GHSA-many-{i:04d}-abcd", f"pkg{i}", "1.1")
    client.force_login(operator)

    with django_assert_max_num_queries(14):
        response = client.get(reverse("maintenance:security:component", args=[row.pk]))

    assert response.status_code == 200 and f"pkg{count - 1}" in response.content.decode()
