"""The month grid and the windows of both calendar views are written by template tags
(``maintenance/templatetags/calendar_changes.py``), not template loops: they write what
the loops wrote (kept here as the reference), escaped, with times in the viewer's zone."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.template import engines
from django.urls import reverse
from django.utils import timezone

from maintenance.calendar_selectors import month_calendar, week_calendar
from maintenance.models import BlackoutPeriod, MaintenanceWindow, WindowType
from portal.models import UserPreference

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(\"x\")</script> & 'quotes'"
ZONE = "Asia/Kolkata"

# The window box both views included, and the month's loop over its days.
WINDOW = """{% load calendar_changes %}{% with window_url=entry.window.get_absolute_url %}\
<div class="cal-window type-{{ entry.window.type }} wstatus-{{ entry.window.status }}" \
data-testid="window-{{ entry.window.pk }}">
  <a href="{{ window_url }}"><time datetime="{{ entry.window.start|date:'c' }}">\
{{ entry.window.start|date:"H:i" }}–{{ entry.window.end|date:"H:i T" }}</time> \
{{ entry.window.get_type_display }}</a>
  <span class="state wstate-{{ entry.window.status }}">{{ entry.window.get_status_display }}</span>
  {% if entry.changes %}
  <ul class="cal-changes">
    {% calendar_changes entry.changes detailed %}
    {% if entry.more %}<li class="more"><a href="{{ window_url }}" data-testid="more-changes">\
+ {{ entry.more }} more</a></li>{% endif %}
  </ul>
  {% elif detailed %}<p class="muted">No changes scheduled.</p>{% endif %}
</div>{% endwith %}"""
MONTH_LOOP = (
    """{% for week in weeks %}
      <tr>
      {% for d in week %}
        {% with iso=d.day|date:'Y-m-d' %}<td class="day{% if not d.in_period %} other-period\
{% endif %}{% if d.is_today %} today{% endif %}{% if d.blackout %} blackout{% endif %}" \
data-date="{{ iso }}">
          <a class="day-number" href="{{ week_url }}?date={{ iso }}" \
hx-get="{{ week_url }}?date={{ iso }}" hx-target="#calendar" hx-swap="outerHTML" \
hx-push-url="true" aria-label="Week of {{ d.day|date:'j F Y' }}">{{ d.day.day }}</a>\
{% endwith %}
          {% if d.blackout %}<div class="blackout-reason" data-testid="blackout">Blackout: \
{{ d.blackout }}</div>{% endif %}
          {% for entry in d.windows %}"""
    + WINDOW
    + """{% endfor %}
        </td>
      {% endfor %}
      </tr>
    {% endfor %}"""
)
WEEK_WINDOWS = (
    "{% for d in days %}{% for entry in d.windows %}" + WINDOW + "{% endfor %}{% endfor %}"
)


def _squeezed(html: str) -> str:
    return re.sub(r">\s+<", "><", html).strip()


def _between(page: str, start: str, end: str) -> str:
    return _squeezed(re.search(f"{start}(.*?){end}", page, re.S).group(1))


def _reference(template: str, context: dict) -> str:
    with timezone.override(ZONE):
        return _squeezed(engines["django"].from_string(template).render(context))


@pytest.fixture
def busy_may(cal_window, cal_slot, other_tenant, operator):
    """May 2027 as a viewer in India sees it: a window whose changes overflow the month's
    list, one with a hostile title and a change restricted from the viewer, an
    emergency window with no changes, and a blackout day with a hostile reason."""
    UserPreference.objects.create(user=operator, timezone=ZONE)
    full = cal_window(datetime(2027, 5, 16, 1, 0, tzinfo=UTC))
    for n in range(7):
        cal_slot(full, title=f"Change number {n}")
    mixed = cal_window(datetime(2027, 5, 9, 1, 0, tzinfo=UTC))
    cal_slot(mixed, title=HOSTILE)
    cal_slot(mixed, title="Not for this viewer", tenants=[other_tenant])
    cal_window(
        datetime(2027, 5, 12, 22, 30, tzinfo=UTC),
        type=WindowType.EMERGENCY,
        minutes=90,
        status=MaintenanceWindow.Status.PENDING_APPROVAL,
    )
    BlackoutPeriod.objects.create(
        start_date=date(2027, 5, 19), end_date=date(2027, 5, 19), reason="Audit <b>&</b> close"
    )
    return operator


def _month_page_as(client, viewer) -> str:
    """May 2027 as ``viewer`` gets it, after checking its grid is what the loop wrote
    for the same days."""
    client.force_login(viewer)
    page = client.get(reverse("calendar:month"), {"year": 2027, "month": 5}).content.decode()
    with timezone.override(ZONE):
        context = month_calendar(
            user=viewer, year=2027, month=5, tz=timezone.get_current_timezone(),
            today=date(2027, 5, 12),
        )  # fmt: skip
    context["week_url"] = reverse("calendar:week")
    assert _between(page, "<tbody>", "</tbody>") == _reference(MONTH_LOOP, context)
    return page


@time_machine.travel(datetime(2027, 5, 12, 9, 0, tzinfo=UTC), tick=False)
def test_the_month_grid_is_what_the_template_loop_wrote(client, busy_may, outsider):
    UserPreference.objects.create(user=outsider, timezone=ZONE)
    page = _month_page_as(client, outsider)  # sees the other tenant's change only

    assert "<script>alert" not in page and "<b>&</b>" not in page
    assert "Change (restricted)" in page and "+ 2 more" in page


@time_machine.travel(datetime(2027, 5, 12, 9, 0, tzinfo=UTC), tick=False)
def test_the_month_grid_for_the_viewer_who_sees_every_change(client, busy_may):
    page = _month_page_as(client, busy_may)

    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quotes&#x27;" in page
    assert " IST</time>" in page and 'class="day today' in page


@time_machine.travel(datetime(2027, 5, 12, 9, 0, tzinfo=UTC), tick=False)
@pytest.mark.parametrize("monday", ["2027-05-10", "2027-05-03"])
def test_the_week_windows_are_what_the_included_template_wrote(client, busy_may, monday):
    client.force_login(busy_may)
    page = client.get(reverse("calendar:week"), {"date": monday}).content.decode()

    with timezone.override(ZONE):
        context = week_calendar(
            user=busy_may, day=date.fromisoformat(monday), tz=timezone.get_current_timezone(),
            today=date(2027, 5, 12),
        )  # fmt: skip
    context["detailed"] = True
    shown = "".join(re.findall(r'<div class="cal-window.*?</div>', page, re.S))
    assert _squeezed(shown) == _reference(WEEK_WINDOWS, context)
    assert shown  # each of these weeks has a window
