"""The calendar pages: month and week, windows with their changes, blackout days, who may
see them, htmx navigation and a bounded number of queries."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from maintenance.models import BlackoutPeriod, MaintenanceWindow, ScheduledChange
from portal.models import UserPreference

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
MAY_2027 = datetime(2027, 5, 12, 9, 0, tzinfo=UTC)
SUNDAY_16_MAY = datetime(2027, 5, 16, 1, 0, tzinfo=UTC)


def _month(client, year=2027, month=5, **extra):
    return client.get(reverse("calendar:month"), {"year": year, "month": month}, **extra)


def _cell(page: str, day: str) -> str:
    """The month grid's cell of one day (up to the next cell)."""
    start = page.index(f'data-date="{day}"')
    end = page.find("data-date=", start + 10)
    return page[start : end if end != -1 else len(page)]


def _text(html: str) -> str:
    """What a reader sees: tags dropped, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- who may see it --------------------------------------------------------------------


@pytest.mark.parametrize(
    "who", ["operator", "engineer", "security", "compliance", "cto", "ciso", "superuser"]
)
def test_it_shows_the_calendar_to_the_roles_that_plan_maintenance(client, request, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("calendar:month")).status_code == 200
    assert client.get(reverse("calendar:week")).status_code == 200


def test_a_requester_reads_the_calendar(client, requester):
    """Everyone who may file changes sees the windows (read-only), to pick a date."""
    client.force_login(requester)
    assert client.get(reverse("calendar:month")).status_code == 200
    assert client.get(reverse("calendar:week")).status_code == 200


def test_it_refuses_a_user_without_a_role(client, make_user):
    client.force_login(make_user("nobody", []))
    assert client.get(reverse("calendar:month")).status_code == 403
    assert client.get(reverse("calendar:week")).status_code == 403
    assert client.post(reverse("calendar:token"), {"action": "create"}).status_code == 403


def test_it_sends_an_anonymous_visitor_to_the_login_page(client):
    response = client.get(reverse("calendar:month"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_navigation_links_the_calendar_for_those_who_may_see_it(
    client, operator, requester, make_user
):
    for user in (operator, requester):
        client.force_login(user)
        assert 'href="/calendar/"' in client.get(reverse("portal:dashboard")).content.decode()
    client.force_login(make_user("nobody", []))
    assert 'href="/calendar/"' not in client.get(reverse("portal:dashboard")).content.decode()


# --- what it shows ---------------------------------------------------------------------


def test_it_shows_a_window_with_its_changes_in_the_viewers_time_zone(
    client, operator, cal_window, cal_slot
):
    window = cal_window(SUNDAY_16_MAY)
    change = cal_slot(window, title="Rotate TLS certificates")
    UserPreference.objects.create(user=operator, timezone="America/Los_Angeles")
    client.force_login(operator)

    page = _month(client).content.decode()

    # 01:00 UTC on Sunday is 18:00 on Saturday in Los Angeles (PDT).
    saturday = _cell(page, "2027-05-15")
    assert window.get_absolute_url() in saturday
    assert "18:00–22:00 PDT Routine Planned" in _text(saturday)
    assert f'<a href="{change.get_absolute_url()}">{change.public_id}</a>' in saturday
    assert "Rotate TLS certificates" in saturday
    assert window.get_absolute_url() not in _cell(page, "2027-05-16")
    assert "Times in America/Los_Angeles" in page


def test_a_title_is_escaped_and_the_week_gives_each_start_in_the_viewers_zone(
    client, operator, cal_window, cal_slot
):
    """The changes of a window are written by a template tag, not the template engine:
    its output is escaped as a template's and its times in the viewer's zone."""
    window = cal_window(SUNDAY_16_MAY)
    change = cal_slot(window, title='<script>alert("x")</script> & "quotes"', minutes=30)
    UserPreference.objects.create(user=operator, timezone="America/Los_Angeles")
    client.force_login(operator)

    month = _month(client).content.decode()
    week = client.get(reverse("calendar:week"), {"date": "2027-05-15"}).content.decode()

    for page in (month, week):
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
        assert f'<a href="{change.get_absolute_url()}">{change.public_id}</a>' in page
    planned = ScheduledChange.objects.get(change=change).planned_start
    start = planned.astimezone(ZoneInfo("America/Los_Angeles"))
    assert f'<time datetime="{start.isoformat()}">{start:%H:%M} PDT</time>' in week
    assert "(30 min)" in _text(week) and "(30 min)" not in _text(month)


def test_it_hides_the_titles_of_changes_the_viewer_may_not_see(
    client, outsider, operator, cal_window, cal_slot, other_tenant
):
    window = cal_window(SUNDAY_16_MAY)
    hidden = cal_slot(window, title="Patch Acme's claims database")
    shown = cal_slot(window, title="Patch Globex's clinic portal", tenants=[other_tenant])
    client.force_login(outsider)

    page = _month(client).content.decode()

    assert "Patch Acme" not in page and hidden.get_absolute_url() not in page
    assert hidden.public_id not in page
    assert "Change (restricted)" in page
    assert "Patch Globex" in page and shown.get_absolute_url() in page


def test_it_marks_blackout_days_with_their_reason(client, operator):
    BlackoutPeriod.objects.create(
        start_date=date(2027, 5, 19), end_date=date(2027, 5, 19), reason="Quarter-end audit"
    )
    client.force_login(operator)

    may = _month(client, 2027, 5).content.decode()
    july = _month(client, 2027, 7).content.decode()

    for day in ("2027-05-29", "2027-05-30", "2027-05-31"):  # 31 May is Memorial Day too
        assert "Blackout: End of month (last 3 days)" in _cell(may, day)
    assert "Blackout: Freeze: Quarter-end audit" in _cell(may, "2027-05-19")
    assert "Blackout" not in _cell(may, "2027-05-18")
    assert "4 blackout days this month" in _text(may)
    assert "Blackout: Holiday: Independence Day" in _cell(july, "2027-07-04")
    assert "Blackout: Holiday: Independence Day (observed)" in _cell(july, "2027-07-05")


def test_the_week_view_lists_each_day_with_windows_changes_and_blackouts(
    client, operator, cal_window, cal_slot
):
    window = cal_window(datetime(2027, 7, 11, 1, 0, tzinfo=UTC))
    cal_slot(window, title="Vacuum the claims tables", minutes=45)
    client.force_login(operator)

    response = client.get(reverse("calendar:week"), {"date": "2027-07-07"})
    page = response.content.decode()

    assert response.status_code == 200
    assert "Week of 05 Jul – 11 Jul 2027" in page
    assert "Blackout: Holiday: Independence Day (observed)" in page  # Monday 5 July
    assert window.get_absolute_url() in page
    assert "01:00–05:00 UTC Routine Planned 01:00 UTC CHG-" in _text(page)
    assert "Vacuum the claims tables (45 min)" in _text(page)


def test_a_full_window_lists_its_first_changes_in_the_month_and_all_in_the_week(
    client, operator, cal_window, cal_slot, other_tenant
):
    """Eight changes in one window, the second restricted to this viewer: the month's
    day cell lists the first five by position (the restricted one as such) and links
    "+ 3 more" to the window's page; the week view lists all eight."""
    window = cal_window(SUNDAY_16_MAY)
    changes = [
        cal_slot(
            window,
            title=f"Change number {i}",
            tenants=[other_tenant] if i == 1 else None,
        )
        for i in range(8)
    ]
    client.force_login(operator)

    cell = _cell(_month(client).content.decode(), "2027-05-16")

    listed = re.findall(r"Change number (\d)", cell)
    assert listed == ["0", "2", "3", "4"]
    assert _text(cell).count("Change (restricted)") == 1
    assert changes[5].public_id not in cell
    assert f'<a href="{window.get_absolute_url()}" data-testid="more-changes">+ 3 more</a>' in cell
    week = client.get(reverse("calendar:week"), {"date": "2027-05-16"}).content.decode()
    assert re.findall(r"Change number (\d)", week) == ["0", "2", "3", "4", "5", "6", "7"]
    assert "more-changes" not in week


def test_emergency_windows_show_their_type_and_status(client, operator, cal_window, cto):
    window = cal_window(
        datetime(2027, 5, 20, 14, 0, tzinfo=UTC),
        type="EMERGENCY",
        minutes=90,
        status=MaintenanceWindow.Status.PENDING_APPROVAL,
        requested_by=cto,
    )
    client.force_login(operator)

    cell = _cell(_month(client).content.decode(), "2027-05-20")

    assert "type-EMERGENCY" in cell
    assert "14:00–15:30 UTC Emergency Awaiting approval" in _text(cell)
    assert window.get_absolute_url() in cell


def test_the_page_links_to_the_emergency_request_form_for_those_who_may_request(
    client, operator, compliance
):
    client.force_login(operator)
    assert (
        reverse("calendar:emergency_new") in client.get(reverse("calendar:month")).content.decode()
    )
    client.force_login(compliance)
    page = client.get(reverse("calendar:month")).content.decode()
    assert reverse("calendar:emergency_new") not in page


# --- navigation ------------------------------------------------------------------------


def test_it_opens_on_the_current_month(client, operator):
    with time_machine.travel(MAY_2027, tick=False):
        client.force_login(operator)  # in the travelled time, or the session has expired
        page = client.get(reverse("calendar:month")).content.decode()
    assert "May 2027" in page
    assert 'class="day today" data-date="2027-05-12"' in page


def test_prev_and_next_load_the_neighbouring_months_through_htmx(client, operator):
    client.force_login(operator)

    full = _month(client, 2027, 1).content.decode()
    partial = _month(client, 2026, 12, **HTMX)

    assert '"/calendar/?year=2026&amp;month=12"' in full
    assert '"/calendar/?year=2027&amp;month=2"' in full
    assert 'hx-push-url="true"' in full and 'hx-target="#calendar"' in full
    body = partial.content.decode()
    assert partial.status_code == 200
    assert body.lstrip().startswith('<section class="card calendar" id="calendar"')
    assert "December 2026" in body and "<html" not in body
    assert "HX-Request" in partial["Vary"]


def test_a_history_restore_gets_the_whole_page(client, operator):
    client.force_login(operator)
    response = _month(client, **HTMX, HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in response.content.decode()


def test_the_week_partial_navigates_by_seven_days(client, operator):
    client.force_login(operator)
    response = client.get(reverse("calendar:week"), {"date": "2027-01-01"}, **HTMX)
    body = response.content.decode()
    assert "<html" not in body
    assert "Week of 28 Dec – 03 Jan 2027" in body
    assert "?date=2026-12-21" in body and "?date=2027-01-04" in body


@pytest.mark.parametrize(
    "params",
    [
        {"year": "twenty", "month": "5"},
        {"year": "2027", "month": "13"},
        {"year": "99999", "month": "1"},
        {"year": "2027", "month": "0"},
    ],
)
def test_a_bad_month_gets_a_clear_400(client, operator, params):
    client.force_login(operator)
    response = client.get(reverse("calendar:month"), params)
    assert response.status_code == 400
    assert "Choose a month" in response.content.decode()


@pytest.mark.parametrize("value", ["yesterday", "2027-02-30", "0001-01-01", "2027-5-1x"])
def test_a_bad_week_date_gets_a_clear_400(client, operator, value):
    client.force_login(operator)
    response = client.get(reverse("calendar:week"), {"date": value})
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.content.decode()


# --- bounded queries -------------------------------------------------------------------

MONTH_BOUND = 13


def _fill_month(n: int, cal_window, cal_slot, other_tenant) -> None:
    start = datetime(2027, 5, 1, 2, 0, tzinfo=UTC)
    for i in range(n):
        window = cal_window(start + timedelta(hours=20 * i), title=f"Window {i}")
        cal_slot(window, title=f"Visible change {i}")
        cal_slot(window, title=f"Hidden change {i}", tenants=[other_tenant])


@pytest.mark.parametrize("windows", [3, 30])
def test_the_month_page_keeps_a_fixed_number_of_queries(
    client, operator, cal_window, cal_slot, other_tenant, windows, django_assert_max_num_queries
):
    _fill_month(windows, cal_window, cal_slot, other_tenant)
    client.force_login(operator)
    _month(client)  # the session's time zone is read once per session

    with django_assert_max_num_queries(MONTH_BOUND):
        page = _month(client).content.decode()

    assert page.count('class="cal-window ') == windows
    assert page.count("Change (restricted)") == windows


@pytest.mark.parametrize("windows", [3, 30])
def test_the_week_page_keeps_a_fixed_number_of_queries(
    client, operator, cal_window, cal_slot, other_tenant, windows, django_assert_max_num_queries
):
    _fill_month(windows, cal_window, cal_slot, other_tenant)
    client.force_login(operator)
    client.get(reverse("calendar:week"), {"date": "2027-05-03"})

    with django_assert_max_num_queries(MONTH_BOUND):
        client.get(reverse("calendar:week"), {"date": "2027-05-03"})
