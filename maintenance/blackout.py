"""Blackout rules (seed: blackoutDates END_OF_MONTH and HOLIDAYS) plus manual freezes."""

from __future__ import annotations

import calendar
import functools
from datetime import date, timedelta

import holidays

from maintenance.models import BlackoutPeriod, MaintenancePolicy


@functools.lru_cache(maxsize=64)
def _holiday_calendar(country: str, subdivision: str, market: str, year: int):
    if market:
        return holidays.financial_holidays(market, years=year)
    if country:
        return holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return {}


def holiday_name(day: date, policy: MaintenancePolicy) -> str | None:
    cal = _holiday_calendar(
        policy.holiday_country, policy.holiday_subdivision, policy.holiday_market, day.year
    )
    return cal.get(day)


def end_of_month(day: date, policy: MaintenancePolicy) -> bool:
    if policy.end_of_month_days <= 0:
        return False
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day > last - policy.end_of_month_days


def blackout_reason(
    day: date, policy: MaintenancePolicy, periods: list[BlackoutPeriod] | None = None
) -> str | None:
    """Why the day is blacked out, or None. Manual freezes first, then the seed's rules."""
    if periods is None:
        periods = list(BlackoutPeriod.objects.filter(start_date__lte=day, end_date__gte=day))
    for period in periods:
        if period.start_date <= day <= period.end_date:
            return f"Freeze: {period.reason}"
    if end_of_month(day, policy):
        return f"End of month (last {policy.end_of_month_days} days)"
    name = holiday_name(day, policy)
    if name:
        return f"Holiday: {name}"
    return None


def blackout_days(start: date, end: date, policy: MaintenancePolicy) -> dict[date, str]:
    """Every blacked-out day in [start, end], with its reason (one query)."""
    periods = list(BlackoutPeriod.objects.filter(start_date__lte=end, end_date__gte=start))
    days: dict[date, str] = {}
    day = start
    while day <= end:
        reason = blackout_reason(day, policy, periods)
        if reason:
            days[day] = reason
        day += timedelta(days=1)
    return days
