"""Change-management KPIs per month, over the changes the viewer may see.

Months are calendar months in UTC. Each KPI is a table (``Kpi``): the page draws it as
an SVG chart beside the table, and its CSV link serves the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from changes import access as change_access
from changes.models import Category, ChangeRequest, State
from maintenance.models import MaintenanceIssue, ProcedureRun


@dataclass
class Kpi:
    key: str
    title: str
    unit: str
    headers: list[str]
    rows: list[list[Any]]
    # Chart: labels along the x axis and the series drawn (name -> values).
    labels: list[str] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    stacked: bool = False
    note: str = ""


def month_range(start: date | None, end: date | None) -> list[date]:
    """The months from ``start`` to ``end`` (both first days); the last twelve by default."""
    today = timezone.now().date()
    end = (end or today).replace(day=1)
    if start is None:
        year, month = divmod(end.year * 12 + end.month - 1 - 11, 12)
        start = date(year, month + 1, 1)
    start = start.replace(day=1)
    months = []
    cursor = start
    while cursor <= end:
        months.append(cursor)
        year, month = divmod(cursor.year * 12 + cursor.month, 12)
        cursor = date(year, month + 1, 1)
    return months


def _bounds(months: list[date]) -> tuple[datetime, datetime]:
    first, last = months[0], months[-1]
    year, month = divmod(last.year * 12 + last.month, 12)
    return (
        datetime(first.year, first.month, 1, tzinfo=UTC),
        datetime(year, month + 1, 1, tzinfo=UTC),
    )


def _month_key(value: datetime | date) -> date:
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
    return date(value.year, value.month, 1)


def _label(month: date) -> str:
    return month.strftime("%Y-%m")


def percentile(values: list[float], share: float) -> float | None:
    """Linear interpolation between closest ranks (what spreadsheets call PERCENTILE)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _monthly_counts(qs, field_name: str, group: str, start, end) -> dict[date, dict[str, int]]:
    counts: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = (
        qs.filter(**{f"{field_name}__gte": start, f"{field_name}__lt": end})
        .annotate(month=TruncMonth(field_name, tzinfo=UTC))
        .values("month", group)
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        counts[_month_key(row["month"])][row[group] or ""] += row["n"]
    return counts


def success_rate(visible, months, start, end) -> Kpi:
    counts = _monthly_counts(visible, "executed_at", "outcome", start, end)
    rows, values = [], []
    for m in months:
        ok, failed = counts[m]["SUCCESSFUL"], counts[m]["FAILED"]
        rate = round(100 * ok / (ok + failed), 1) if ok + failed else None
        rows.append([_label(m), ok + failed, ok, failed, rate])
        values.append(rate)
    return Kpi(
        "success-rate",
        "Change success rate",
        "%",
        ["Month", "Executed", "Successful", "Failed", "Success rate (%)"],
        rows,
        [_label(m) for m in months],
        {"Success rate": values},
        note="Changes executed in the month that completed, of all that completed or failed.",
    )


def category_share(visible, months, start, end) -> Kpi:
    counts = _monthly_counts(visible, "submitted_at", "category", start, end)
    rows = []
    shares: dict[str, list[float | None]] = {"Emergency": [], "Urgent": []}
    for m in months:
        total = sum(counts[m].values())
        emergency, urgent = counts[m][Category.EMERGENCY], counts[m][Category.URGENT]
        e_share = round(100 * emergency / total, 1) if total else None
        u_share = round(100 * urgent / total, 1) if total else None
        rows.append(
            [_label(m), total, counts[m][Category.STANDARD], emergency, urgent, e_share, u_share]
        )
        shares["Emergency"].append(e_share)
        shares["Urgent"].append(u_share)
    return Kpi(
        "emergency-share",
        "Emergency and urgent share",
        "%",
        ["Month", "Submitted", "Standard", "Emergency", "Urgent", "Emergency (%)", "Urgent (%)"],
        rows,
        [_label(m) for m in months],
        shares,
        stacked=True,
        note="Of the changes submitted in the month, the share assessed Emergency or Urgent.",
    )


def approval_lead_time(visible, months, start, end) -> Kpi:
    hours: dict[date, list[float]] = defaultdict(list)
    decided = (
        visible.filter(decided_at__gte=start, decided_at__lt=end, submitted_at__isnull=False)
        .exclude(state=State.REJECTED)
        .values_list("submitted_at", "decided_at")
    )
    for submitted, decided_at in decided.iterator(chunk_size=5000):
        hours[_month_key(decided_at)].append((decided_at - submitted).total_seconds() / 3600)
    rows, medians, p90s = [], [], []
    for m in months:
        median, p90 = percentile(hours[m], 0.5), percentile(hours[m], 0.9)
        median = round(median, 2) if median is not None else None
        p90 = round(p90, 2) if p90 is not None else None
        rows.append([_label(m), len(hours[m]), median, p90])
        medians.append(median)
        p90s.append(p90)
    return Kpi(
        "approval-lead-time",
        "Approval lead time",
        "h",
        ["Month", "Approved", "Median (hours)", "90th percentile (hours)"],
        rows,
        [_label(m) for m in months],
        {"Median": medians, "90th percentile": p90s},
        note="From submission to the last required approval, for changes approved in the month.",
    )


def overruns(user, visible, months, start, end) -> Kpi:
    issues = MaintenanceIssue.objects.filter(kind=MaintenanceIssue.Kind.OVERRUN)
    if change_access.sees_everything(user):
        issues = issues.filter(Q(change__isnull=True) | Q(change__in=visible))
    else:
        issues = issues.filter(change__in=visible)
    counts = _monthly_counts(issues, "created_at", "kind", start, end)
    rows, values = [], []
    for m in months:
        n = counts[m][MaintenanceIssue.Kind.OVERRUN]
        rows.append([_label(m), n])
        values.append(n)
    return Kpi(
        "overruns",
        "Overruns",
        "",
        ["Month", "Overruns"],
        rows,
        [_label(m) for m in months],
        {"Overruns": values},
        note="Work that ran past its window or its planned time, recorded as an issue.",
    )


def failures_by_component(visible, months, start, end) -> Kpi:
    rolled_back = Exists(
        ProcedureRun.objects.filter(change=OuterRef("pk"), status=ProcedureRun.Status.ROLLED_BACK)
    )
    failed = (
        visible.filter(executed_at__gte=start, executed_at__lt=end, outcome="FAILED")
        .annotate(rolled=rolled_back)
        .values_list("pk", "executed_at", "state", "rolled", "components__name")
    )
    per_month: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _pk, executed_at, state, rolled, component in failed.iterator(chunk_size=5000):
        key = component or "(none)"
        back = int(bool(rolled) or state == State.ROLLED_BACK)
        per_month[(key, _month_key(executed_at))][0] += 1 - back
        per_month[(key, _month_key(executed_at))][1] += back
        totals[key][0] += 1 - back
        totals[key][1] += back
    rows = [
        [component, _label(month), n[0], n[1]]
        for (component, month), n in sorted(per_month.items(), key=lambda i: (i[0][0], i[0][1]))
    ]
    names = sorted(totals, key=lambda c: (-sum(totals[c]), c))[:12]
    return Kpi(
        "failures-by-component",
        "Failed and rolled-back changes by component",
        "",
        ["Component", "Month", "Failed", "Rolled back"],
        rows,
        names,
        {"Failed": [totals[c][0] for c in names], "Rolled back": [totals[c][1] for c in names]},
        stacked=True,
        note="Changes that failed in the range, per component they named (the chart sums the "
        "range; the table is per month). Rolled back: its procedures' rollback ran.",
    )


def kpis(
    user, *, start: date | None = None, end: date | None = None
) -> tuple[list[date], list[Kpi]]:
    months = month_range(start, end)
    lo, hi = _bounds(months)
    visible: Any = change_access.changes_visible_to(user)
    if not change_access.sees_everything(user):
        # One subquery instead of the visibility filter repeated in every aggregate.
        visible = ChangeRequest.objects.filter(pk__in=visible.values("pk"))
    return months, [
        success_rate(visible, months, lo, hi),
        category_share(visible, months, lo, hi),
        approval_lead_time(visible, months, lo, hi),
        overruns(user, visible, months, lo, hi),
        failures_by_component(visible, months, lo, hi),
    ]


KPI_KEYS = (
    "success-rate",
    "emergency-share",
    "approval-lead-time",
    "overruns",
    "failures-by-component",
)
