"""The audit trail's rows are written by a template tag
(``compliance/templatetags/audit_rows.py``), not a template loop: it writes what the loop
wrote (kept here as the reference), escaped, with times in the viewer's zone."""

from __future__ import annotations

import re

import pytest
from django.template import engines
from django.utils import timezone

from portal.audit import audit_record
from portal.models import AuditEvent, UserPreference

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(\"x\")</script> & 'quotes'"

# The loop the tag replaced, as the template wrote it.
AUDIT_LOOP = engines["django"].from_string(
    """{% load portal_format %}{% for e in rows %}
    <tr class="outcome-{{ e.outcome|lower }}">
      <td>{{ e.sequence }}</td>
      <td><time datetime="{{ e.created_at|date:'c' }}">{{ e.created_at|date:"Y-m-d H:i:s T" }}"""
    """</time></td>
      <td>{{ e.username|default:"—" }}</td>
      <td>{{ e.role|default:"—" }}</td>
      <td>{{ e.action|event_label:"subject" }} <code class="event-code">{{ e.action }}</code></td>
      <td>{{ e.object_type }} {{ e.object_id }}</td>
      <td>{{ e.get_outcome_display }}</td>
      <td>{{ e.ip_address|default:"—" }}</td>
      <td><code>{{ e.request_id|truncatechars:12 }}</code></td>
      <td><code class="hash" title="{{ e.hash }}">{{ e.hash|truncatechars:13 }}</code></td>
    </tr>
  {% empty %}
    <tr><td colspan="10" class="empty">No audit events match.</td></tr>
  {% endfor %}"""
)


def _squeezed(html: str) -> str:
    return re.sub(r">\s+<", "><", html).strip()


def _tbody(page: str) -> str:
    return _squeezed(re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1))


def test_the_audit_rows_are_what_the_template_loop_wrote(client, compliance, requester):
    audit_record(action="change.submitted", username=HOSTILE, object_type=HOSTILE, object_id="1")
    audit_record(action="approval.denied", user=requester, role="SECURITY", outcome="DENIED")
    audit_record(action="dbops.target.check_refused", object_id="CHG-000001", outcome="FAILURE")
    client.force_login(requester)
    client.get("/reports/")  # refused, and audited with the request's address and id
    UserPreference.objects.create(user=compliance, timezone="Asia/Kolkata")
    client.force_login(compliance)

    page = client.get("/reports/").content.decode()

    rows = list(AuditEvent.objects.order_by("-sequence")[:50])
    assert any(e.ip_address and len(e.request_id) > 12 for e in rows)
    with timezone.override("Asia/Kolkata"):
        assert _tbody(page) == _squeezed(AUDIT_LOOP.render({"rows": rows}))
    assert "<script>alert" not in page and " IST</time>" in page


def test_no_matching_events_say_so(client, compliance):
    client.force_login(compliance)
    page = client.get("/reports/", {"user": "nobody-at-all"}).content.decode()
    assert _tbody(page) == '<tr><td colspan="10" class="empty">No audit events match.</td></tr>'
