"""The change list's and the approval queue's rows are written by template tags
(``changes/templatetags/change_rows.py``), not template loops: they write what the loops
wrote (kept here as the reference), escaped, with times in the viewer's zone."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.template import engines
from django.urls import reverse
from django.utils import timezone

from changes import selectors
from changes.models import ChangeRequest
from portal.models import UserPreference
from tests.factories import ApprovalFactory, ChangeRequestFactory, TenantFactory, urgent_change

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(\"x\")</script> & 'quotes'"

# The loops the tags replaced, as the templates wrote them.
CHANGE_LOOP = engines["django"].from_string(
    """{% for c in rows %}
    <tr>{% with url=c.get_absolute_url %}
      <td><a href="{{ url }}">{{ c.public_id }}</a></td>
      <td class="title"><a href="{{ url }}">{{ c.title }}</a></td>{% endwith %}
      <td>{{ c.get_type_display }}</td>
      <td>{{ c.get_priority_display }}</td>
      <td>{{ c.get_category_display|default:"—" }}</td>
      <td><span class="state state-{{ c.state }}">{{ c.get_state_display }}</span></td>
      <td>{% for t in c.tenants.all|dictsort:"name" %}{{ t.name }}{% if not forloop.last %}"""
    """, {% endif %}{% endfor %}</td>
      <td>{{ c.requester.get_username }}</td>
      <td><time datetime="{{ c.proposed_start|date:'c' }}">"""
    """{{ c.proposed_start|date:"Y-m-d H:i T" }}</time></td>
    </tr>
  {% empty %}
    <tr><td colspan="9" class="empty">No changes match.</td></tr>
  {% endfor %}"""
)
APPROVAL_LOOP = engines["django"].from_string(
    """{% for a in rows %}
    <tr class="{% if a.is_overdue %}overdue{% endif %}">
      {% with url=a.get_absolute_url %}<td><a href="{{ url }}">{{ a.change.public_id }}</a></td>
      <td class="title"><a href="{{ url }}">{{ a.change.title }}</a></td>{% endwith %}
      <td>{{ a.change.get_category_display }}</td>
      <td class="risk-{{ a.change.risk_level }}">"""
    """{{ a.change.get_risk_level_display }} ({{ a.change.risk_score }})</td>
      <td>{{ a.get_role_display }}{% if a.phase == "RETROACTIVE" %} (retroactive){% endif %}</td>
      <td>{{ a.change.requester.get_username }}</td>
      <td>{% if a.due_at %}<time datetime="{{ a.due_at|date:'c' }}">"""
    """{{ a.due_at|date:"Y-m-d H:i T" }}</time>"""
    """{% if a.is_overdue %} <strong>overdue</strong>{% endif %}{% else %}—{% endif %}</td>
    </tr>
  {% endfor %}"""
)


def _squeezed(html: str) -> str:
    return re.sub(r">\s+<", "><", html).strip()


def _tbody(page: str) -> str:
    return _squeezed(re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1))


def _reference(loop, rows, zone: str) -> str:
    with timezone.override(zone):
        return _squeezed(loop.render({"rows": rows}))


def test_the_change_list_rows_are_what_the_template_loop_wrote(client, requester, tenant):
    second = TenantFactory(slug="aaa", name="Aardvark & Sons")
    ChangeRequestFactory(requester=requester, title=HOSTILE, tenants=[tenant, second])
    ChangeRequestFactory(requester=requester, state="in_review", category="EMERGENCY")
    ChangeRequestFactory(requester=requester, priority="CRITICAL", type="DATABASE")
    UserPreference.objects.create(user=requester, timezone="Asia/Kolkata")
    client.force_login(requester)

    page = client.get(reverse("changes:list")).content.decode()

    rows = list(ChangeRequest.objects.order_by("-created_at", "-pk"))
    assert _tbody(page) == _reference(CHANGE_LOOP, rows, "Asia/Kolkata")
    assert "<script>alert" not in page and "Aardvark &amp; Sons, " in page
    assert " IST</time>" in page


def test_an_empty_change_list_says_so(client, requester):
    client.force_login(requester)
    page = client.get(reverse("changes:list"), {"q": "nothing like this"}).content.decode()
    assert _tbody(page) == '<tr><td colspan="9" class="empty">No changes match.</td></tr>'


@pytest.fixture
def four_waiting(security, requester, tenant):
    """Four approvals waiting for SECURITY: overdue (with a hostile title), later, with no
    due time, and a retroactive one."""
    now = timezone.now()
    overdue = ApprovalFactory(
        change=ChangeRequestFactory(
            requester=requester,
            title=HOSTILE,
            state="in_review",
            category="STANDARD",
            tenants=[tenant],
        ),
        due_at=now - timedelta(hours=3),
    )
    later = ApprovalFactory(
        change=ChangeRequestFactory(
            requester=requester, state="in_review", category="EMERGENCY", tenants=[tenant]
        ),
        due_at=now + timedelta(days=2),
    )
    undated = ApprovalFactory(
        change=ChangeRequestFactory(
            requester=requester, state="in_review", category="STANDARD", tenants=[tenant]
        )
    )
    retroactive = urgent_change(
        state="completed", requester=requester, retroactive=("SECURITY",), tenants=[tenant]
    )
    return overdue, later, undated, retroactive.approvals.get()


def test_the_approval_queue_rows_are_what_the_template_loop_wrote(client, security, four_waiting):
    UserPreference.objects.create(user=security, timezone="America/New_York")
    client.force_login(security)

    page = client.get(reverse("changes:approvals")).content.decode()

    # The queue's own order over whole objects: the reference reads them as the loop did.
    rows = list(selectors.approval_queue(security))
    assert {a.pk for a in rows} == {a.pk for a in four_waiting}
    assert _tbody(page) == _reference(APPROVAL_LOOP, rows, "America/New_York")
    assert '<tr class="overdue">' in page and "<strong>overdue</strong>" in page
    assert "Security (retroactive)" in page and "<script>alert" not in page


DASHBOARD_LOOP = engines["django"].from_string(
    """{% for a in rows %}
      <tr class="{% if a.is_overdue %}overdue{% endif %}"><td><a href="{{ a.get_absolute_url }}">"""
    """{{ a.change.public_id }} {{ a.change.title }}</a></td><td>{{ a.get_role_display }}"""
    """{% if a.phase == "RETROACTIVE" %} (retroactive){% endif %}</td><td>{% if a.due_at %}"""
    """<time datetime="{{ a.due_at|date:'c' }}">{{ a.due_at|date:"Y-m-d H:i T" }}</time>"""
    """{% if a.is_overdue %} <strong>overdue</strong>{% endif %}{% else %}—{% endif %}</td></tr>
    {% endfor %}"""
)


def test_the_dashboard_approvals_panel_rows_are_what_its_template_loop_wrote(
    client, security, four_waiting
):
    UserPreference.objects.create(user=security, timezone="Australia/Adelaide")
    client.force_login(security)

    page = client.get(reverse("portal:dashboard")).content.decode()

    panel = re.search(r'data-testid="panel-approvals">(.*?)</section>', page, re.S).group(1)
    rows = list(selectors.approval_queue(security))
    assert len(rows) == 4
    assert _tbody(panel) == _reference(DASHBOARD_LOOP, rows, "Australia/Adelaide")
    assert "<script>alert" not in panel and "(retroactive)" in panel
    assert '<tr class="overdue">' in panel and "<strong>overdue</strong>" in panel
