"""Routine windows: every Sunday 01:00 UTC for 8 weeks, never on a blackout day."""

from __future__ import annotations

from datetime import UTC, date, datetime

import holidays
import pytest
import time_machine

from maintenance.blackout import blackout_reason
from maintenance.models import BlackoutPeriod, MaintenanceWindow, WindowType
from maintenance.services import windows_generate
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

# Eight weeks from Monday 10 May 2027 hold these Sundays. 30 May is one of the last three
# days of May (END_OF_MONTH) and 4 July 2027 is Independence Day on a Sunday (HOLIDAYS).
MAY_10_2027 = datetime(2027, 5, 10, 12, 0, tzinfo=UTC)
END_OF_MONTH_SUNDAY = date(2027, 5, 30)
HOLIDAY_SUNDAY = date(2027, 7, 4)
OPEN_SUNDAYS = [
    date(2027, 5, 16),
    date(2027, 5, 23),
    date(2027, 6, 6),
    date(2027, 6, 13),
    date(2027, 6, 20),
    date(2027, 6, 27),
]


def _routine_starts() -> list[datetime]:
    return list(
        MaintenanceWindow.objects.filter(type=WindowType.ROUTINE)
        .order_by("start")
        .values_list("start", flat=True)
    )


def test_the_chosen_sundays_really_are_blackout_days_per_the_holidays_package(
    cal_routine_policy,
):
    assert HOLIDAY_SUNDAY in holidays.country_holidays("US", years=2027)
    assert HOLIDAY_SUNDAY.weekday() == END_OF_MONTH_SUNDAY.weekday() == 6
    assert blackout_reason(END_OF_MONTH_SUNDAY, cal_routine_policy) == "End of month (last 3 days)"
    assert blackout_reason(HOLIDAY_SUNDAY, cal_routine_policy) == "Holiday: Independence Day"


def test_it_opens_a_window_every_sunday_at_one_utc_except_on_blackout_days(cal_routine_policy):
    with time_machine.travel(MAY_10_2027, tick=False):
        created = windows_generate()

    assert [w.start for w in created] == [
        datetime(d.year, d.month, d.day, 1, 0, tzinfo=UTC) for d in OPEN_SUNDAYS
    ]
    assert _routine_starts() == [w.start for w in created]
    window = created[0]
    assert window.duration_minutes == 240
    assert window.notification_offsets == [1440, 60]
    assert window.status == MaintenanceWindow.Status.PLANNED
    starts = {s.date() for s in _routine_starts()}
    assert END_OF_MONTH_SUNDAY not in starts
    assert HOLIDAY_SUNDAY not in starts


def test_running_it_twice_creates_nothing_new(cal_routine_policy):
    with time_machine.travel(MAY_10_2027, tick=False):
        first = windows_generate()
        audited = AuditEvent.objects.filter(action="window.generated").count()
        second = windows_generate()

    assert len(first) == len(OPEN_SUNDAYS)
    assert second == []
    assert MaintenanceWindow.objects.count() == len(OPEN_SUNDAYS)
    assert AuditEvent.objects.filter(action="window.generated").count() == audited


def test_a_week_later_it_adds_only_the_newly_reached_sunday(cal_routine_policy):
    with time_machine.travel(MAY_10_2027, tick=False):
        windows_generate()
    with time_machine.travel(datetime(2027, 5, 17, 12, 0, tzinfo=UTC), tick=False):
        created = windows_generate()

    # Eight weeks from 17 May reach 11 July; 4 July stays a holiday.
    assert [w.start.date() for w in created] == [date(2027, 7, 11)]
    assert HOLIDAY_SUNDAY not in {s.date() for s in _routine_starts()}


def test_a_manual_freeze_keeps_its_sundays_free(cal_routine_policy):
    BlackoutPeriod.objects.create(
        start_date=date(2027, 6, 12), end_date=date(2027, 6, 14), reason="Open enrolment"
    )
    with time_machine.travel(MAY_10_2027, tick=False):
        windows_generate()

    assert date(2027, 6, 13) not in {s.date() for s in _routine_starts()}
    assert len(_routine_starts()) == len(OPEN_SUNDAYS) - 1


def test_a_financial_calendar_can_replace_the_country_one(cal_routine_policy):
    # NYSE is closed on Good Friday, not on Independence Day's Sunday; the rule is data.
    cal_routine_policy.holiday_market = "NYSE"
    cal_routine_policy.save(update_fields=["holiday_market"])
    with time_machine.travel(MAY_10_2027, tick=False):
        windows_generate()

    assert HOLIDAY_SUNDAY in {s.date() for s in _routine_starts()}
    assert END_OF_MONTH_SUNDAY not in {s.date() for s in _routine_starts()}
