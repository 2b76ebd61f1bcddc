"""Bad input on the change form and the decision form: a clear 4xx, never a 500, never
a partial write; whatever a user typed is shown escaped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from changes.models import Approval, ApprovalRule, ChangeRequest, State
from changes.services import change_submit
from portal.middleware import TimezoneMiddleware
from portal.models import AuditEvent, Notification, OutboxMessage
from tests.factories import ComponentFactory

pytestmark = pytest.mark.django_db

HTML = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
MISSING = "<missing>"

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Everything a browser (or a script pretending to be one) can send for a field.
odd_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=300)
huge_text = st.integers(min_value=200, max_value=60_000).map(lambda n: ("ü<b>" * n)[:n])
scalar = st.one_of(
    odd_text,
    huge_text,
    st.just(HTML),
    st.just(""),
    st.just("   "),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
junk = st.one_of(scalar, st.lists(scalar, min_size=1, max_size=3))


def _when(delta: timedelta) -> str:
    return (timezone.localtime() + delta).strftime("%Y-%m-%dT%H:%M")


dates = st.one_of(
    st.timedeltas(min_value=timedelta(days=-5000), max_value=timedelta(days=5000)).map(_when),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M")),
    st.sampled_from(["9999-12-31T23:59", "0001-01-01T00:00", "2024-02-30T10:00", "now"]),
)
ids = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**70),
    st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=4),
    odd_text,
)


def _some_of(fields: dict) -> st.SearchStrategy[dict]:
    """Up to three of the fields, each given a bad value or left out of the request."""
    return st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True).flatmap(
        lambda names: st.fixed_dictionaries(
            {name: st.one_of(st.just(MISSING), fields[name]) for name in names}
        )
    )


change_form_fields = _some_of(
    {
        "title": junk,
        "description": junk,
        "type": st.one_of(junk, st.sampled_from(["SECURITY", "security", "FEATURE"])),
        "priority": st.one_of(junk, st.sampled_from(["CRITICAL", "LOW", "URGENT"])),
        "components": ids,
        "services": ids,
        "tenants": ids,
        "proposed_start": st.one_of(dates, junk),
        "window_minutes": st.one_of(st.integers(min_value=-(10**20), max_value=10**20), junk),
        "blackout_exception": junk,
        "implementation_plan": junk,
        "backout_plan": junk,
        "verification_plan": junk,
        "version": junk,
        "action": st.one_of(st.sampled_from(["save", "submit", "delete"]), junk),
    }
)


def _valid_change_form(tenants, components, /, **overrides) -> dict:
    data = {
        "title": "Patch OpenSSL on the edge",
        "description": "CVE fix",
        "type": "SECURITY",
        "priority": "MEDIUM",
        "components": [c.pk for c in components],
        "services": [],
        "tenants": [t.pk for t in tenants],
        "proposed_start": _when(timedelta(days=14)),
        "window_minutes": "60",
        "blackout_exception": "",
        "implementation_plan": "apt upgrade",
        "backout_plan": "apt install the previous version",
        "verification_plan": "openssl version",
        "action": "save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not MISSING}


# The viewer's zone decides how a typed time converts to UTC: try both ends of the globe.
ZONES = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"]


def _log_in(client, user, zone: str = "UTC") -> None:
    client.force_login(user)
    session = client.session
    session[TimezoneMiddleware.SESSION_KEY] = zone
    session.save()


def _rows() -> dict[str, int]:
    """What a change or decision may write; a refused request must leave all of it."""
    return {
        "changes": ChangeRequest.objects.count(),
        "components": ChangeRequest.components.through.objects.count(),
        "services": ChangeRequest.services.through.objects.count(),
        "tenants": ChangeRequest.tenants.through.objects.count(),
        "approvals": Approval.objects.count(),
        "decided": Approval.objects.exclude(status=Approval.Status.PENDING).count(),
        "states": hash(tuple(ChangeRequest.objects.order_by("pk").values_list("state", "version"))),
        "audit": AuditEvent.objects.count(),
        "notifications": Notification.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }


@FUZZ
@given(fields=change_form_fields, zone=st.sampled_from(ZONES))
@example(fields={"proposed_start": "9999-12-31T23:59"}, zone="Pacific/Pago_Pago")
@example(fields={"proposed_start": "9999-12-31T23:59", "window_minutes": 1440}, zone="UTC")
@example(fields={"proposed_start": "0001-01-01T00:00"}, zone="Pacific/Kiritimati")
@example(fields={"components": [2**63, 0, -1], "tenants": 2**70}, zone="UTC")
@example(fields={"window_minutes": 10**20, "services": "1 OR 1=1"}, zone="UTC")
@example(fields={"title": "\x00", "description": "\ud7ff\U0010ffff" * 5000}, zone="UTC")
@example(fields={"title": [HTML, 7], "type": ["SECURITY", "FEATURE"]}, zone="UTC")
def test_the_change_form_refuses_bad_input_cleanly(
    client, requester, tenant, component, fields, zone
):
    _log_in(client, requester, zone)
    data = _valid_change_form([tenant], [component], action="submit")
    for name, value in fields.items():
        if value is MISSING:
            data.pop(name, None)
        else:
            data[name] = value
    before = _rows()

    response = client.post(reverse("changes:create"), data)

    assert response.status_code in (302, 400), response.status_code
    after = _rows()
    if response.status_code == 400:
        assert after == before, "a refused form wrote something"
        assert response.context["form"].errors
        assert 'role="alert"' in response.content.decode(), "no message says what is wrong"
        return
    assert after["changes"] == before["changes"] + 1
    change = ChangeRequest.objects.order_by("-pk").first()
    assert change.requester == requester
    assert change.state in (State.DRAFT, State.IN_REVIEW)
    assert change.proposed_start > timezone.now()
    assert 1 <= change.window_minutes <= 1440
    assert change.components.exists() and change.tenants.exists()
    page = client.get(change.get_absolute_url())
    assert page.status_code == 200
    assert escape(change.title) in page.content.decode()


@pytest.fixture
def pending() -> dict:
    """The approval the decision examples work on, replaced once one decides it."""
    return {}


decision_fields = _some_of(
    {
        "decision": st.one_of(junk, st.sampled_from(["APPROVED", "REJECTED", "approve"])),
        "comment": junk,
        "version": st.one_of(st.integers(min_value=-(10**30), max_value=10**30), junk),
    }
)


@FUZZ
@given(fields=decision_fields, htmx=st.booleans())
@example(fields={"decision": "REJECTED", "comment": " \t\n"}, htmx=True)
@example(fields={"decision": "REJECTED", "comment": HTML}, htmx=False)
@example(fields={"decision": ["APPROVED", "REJECTED"], "version": 10**30}, htmx=True)
@example(fields={"comment": "x" * 20_001}, htmx=True)
@example(fields={"decision": MISSING}, htmx=False)
@example(fields={"decision": MISSING, "comment": MISSING, "version": MISSING}, htmx=True)
def test_the_decision_form_refuses_bad_input_cleanly(
    client, make_change, security, fields, htmx, pending
):
    approval = pending.get("approval")
    if approval is None or approval.status != Approval.Status.PENDING:
        # A component of its own, so earlier examples' changes never conflict with it.
        change = make_change(type="SECURITY", priority="LOW", components=[ComponentFactory()])
        change = change_submit(change=change, by=change.requester)
        approval = pending["approval"] = change.approvals.get(role="SECURITY")
        client.force_login(security)
    change = approval.change
    data = {"decision": "APPROVED", "comment": "Fine.", "version": approval.version}
    for name, value in fields.items():
        if value is MISSING:
            data.pop(name, None)
        else:
            data[name] = value
    headers = {"HX-Request": "true"} if htmx else {}
    before = _rows()

    response = client.post(reverse("changes:approval", args=[approval.pk]), data, headers=headers)

    assert response.status_code in (200, 302, 400, 409), response.status_code
    approval.refresh_from_db()
    if response.status_code in (400, 409):
        assert _rows() == before, "a refused decision wrote something"
        assert approval.status == Approval.Status.PENDING
        assert 'role="alert"' in response.content.decode(), "no message says what is wrong"
        return
    assert approval.status == data["decision"]
    assert approval.decided_by == security
    change.refresh_from_db()
    expected = State.APPROVED if approval.status == Approval.Status.APPROVED else State.REJECTED
    assert change.state == expected
    if approval.comments:
        page = client.get(change.get_absolute_url()).content.decode()
        assert escape(approval.comments) in page


# --- clear messages on the fields ---------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"proposed_start": _when(-timedelta(hours=1))},
            "proposed_start",
            "The proposed start must be in the future.",
        ),
        ({"window_minutes": "0"}, "window_minutes", "between 1 and 1440 minutes"),
        ({"window_minutes": "1441"}, "window_minutes", "between 1 and 1440 minutes"),
        ({"window_minutes": "-5"}, "window_minutes", "between 1 and 1440 minutes"),
        ({"window_minutes": "1.5"}, "window_minutes", "whole number of minutes"),
        ({"components": MISSING}, "components", "Name at least one component."),
        ({"components": []}, "components", "Name at least one component."),
        ({"tenants": MISSING}, "tenants", "Name at least one tenant."),
        ({"components": [987654321]}, "components", "987654321"),
        ({"title": "   "}, "title", "Give the change a title."),
        ({"title": "x" * 201}, "title", "at most 200 characters"),
        ({"proposed_start": "9999-12-31T23:59"}, "proposed_start", "within two years"),
        ({"proposed_start": "tomorrow"}, "proposed_start", "Enter a valid date/time."),
        ({"type": "URGENT"}, "type", "Select a valid choice."),
    ],
    ids=[
        "start-in-the-past",
        "window-0",
        "window-1441",
        "window-negative",
        "window-fraction",
        "no-component",
        "empty-component-list",
        "no-tenant",
        "unknown-component",
        "blank-title",
        "long-title",
        "start-centuries-away",
        "start-not-a-date",
        "unknown-type",
    ],
)
def test_it_names_the_bad_field(client, requester, tenant, component, overrides, field, message):
    client.force_login(requester)
    before = _rows()
    data = _valid_change_form([tenant], [component], action="submit", **overrides)

    response = client.post(reverse("changes:create"), data)

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field], errors
    assert message in " ".join(errors[field]), errors[field]
    assert escape(message) in response.content.decode()
    assert _rows() == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose Approve or Reject."),
        ({"decision": "MAYBE"}, "Choose Approve or Reject."),
        ({"decision": "REJECTED", "comment": "  "}, "A rejection needs a comment explaining why."),
        ({"decision": "APPROVED", "version": "two"}, "This form is out of date or damaged."),
        ({"decision": "APPROVED", "comment": "x" * 20_001}, "at most 20000 characters"),
    ],
    ids=["no-decision", "unknown-decision", "reject-without-comment", "bad-version", "huge"],
)
def test_the_decision_form_says_what_is_wrong(client, submitted_change, security, data, message):
    approval = submitted_change.approvals.get()
    client.force_login(security)
    before = _rows()

    response = client.post(
        reverse("changes:approval", args=[approval.pk]), data, headers={"HX-Request": "true"}
    )

    assert response.status_code == 400
    assert escape(message) in response.content.decode()
    assert _rows() == before


@pytest.mark.parametrize("version", ["abc", "9" * 5000, "1.5", "-1", "²"])
@pytest.mark.parametrize("action", ["changes:submit", "changes:cancel"])
def test_a_damaged_version_is_a_conflict_not_a_crash(client, draft, action, version):
    client.force_login(draft.requester)
    before = _rows()

    response = client.post(reverse(action, args=[draft.pk]), {"version": version})

    assert response.status_code == 409
    assert "Reload the page and try again." in response.content.decode()
    assert _rows() == before


def test_an_empty_form_names_every_missing_field(client, requester):
    client.force_login(requester)
    before = _rows()

    response = client.post(reverse("changes:create"), {})

    assert response.status_code == 400
    page = response.content.decode()
    for message in (
        "Give the change a title.",
        "Name at least one component.",
        "Name at least one tenant.",
        "The window must be between 1 and 1440 minutes.",
    ):
        assert message in page
    assert _rows() == before


def test_it_refuses_a_tenant_the_requester_cannot_see(
    client, requester, tenant, other_tenant, component
):
    client.force_login(requester)
    before = _rows()
    data = _valid_change_form([tenant, other_tenant], [component], action="submit")

    response = client.post(reverse("changes:create"), data)

    assert response.status_code == 400
    assert "tenants" in response.context["form"].errors
    assert _rows() == before


def test_a_submit_the_policy_cannot_route_saves_nothing_and_keeps_the_form(
    client, requester, tenant, component
):
    """Saving and submitting a new change are one transaction: when submitting is
    refused nothing is saved, and the form comes back with the reason and every value
    the requester typed."""
    ApprovalRule.objects.filter(change_type__in=["SECURITY", ""]).update(active=False)
    client.force_login(requester)
    form = _valid_change_form([tenant], [component], action="submit")

    response = client.post(reverse("changes:create"), form)

    assert response.status_code == 400
    assert not ChangeRequest.objects.exists()
    page = response.content.decode()
    assert "names no approver" in page
    assert f'value="{form["title"]}"' in page


def test_a_stale_decision_form_gets_a_conflict_message(client, make_change, security):
    change = make_change(type="SECURITY", priority="LOW")
    change = change_submit(change=change, by=change.requester)
    approval = change.approvals.get()
    client.force_login(security)
    before = _rows()

    response = client.post(
        reverse("changes:approval", args=[approval.pk]),
        {"decision": "APPROVED", "version": approval.version + 1},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 409
    assert "changed since you opened it" in response.content.decode()
    assert _rows() == before


# --- what users typed is shown, escaped -----------------------------------------------------


def test_html_in_a_title_is_shown_escaped(client, requester, tenant, component):
    client.force_login(requester)
    response = client.post(
        reverse("changes:create"),
        _valid_change_form([tenant], [component], title=f"Fix {HTML}", action="submit"),
    )
    assert response.status_code == 302
    change = ChangeRequest.objects.get()
    assert change.title == f"Fix {HTML}"

    for url in (change.get_absolute_url(), reverse("changes:list")):
        page = client.get(url).content.decode()
        assert ESCAPED in page, url
        assert HTML not in page, url


def test_html_in_an_approval_comment_is_shown_escaped(
    client, make_change, requester, security, compliance, other_tenant
):
    change = make_change(type="SECURITY", priority="LOW", title=HTML)
    change = change_submit(change=change, by=requester)
    approval = change.approvals.get(role="SECURITY")
    client.force_login(security)

    partial = client.post(
        reverse("changes:approval", args=[approval.pk]),
        {"decision": "REJECTED", "comment": f"No: {HTML}", "version": approval.version},
        headers={"HX-Request": "true"},
    )

    assert partial.status_code == 200
    assert ESCAPED in partial.content.decode() and HTML not in partial.content.decode()
    for user in (requester, security, compliance):
        client.force_login(user)
        for url in (
            change.get_absolute_url(),
            reverse("changes:approval", args=[approval.pk]),
            reverse("changes:list"),
        ):
            response = client.get(url)
            if response.status_code == 403:
                continue  # the decision page is only for approvers of that role
            page = response.content.decode()
            assert HTML not in page, (user, url)
            assert ESCAPED in page, (user, url)


def test_html_in_a_delegate_username_is_not_reflected(client, submitted_change, security):
    approval = submitted_change.approvals.get()
    client.force_login(security)
    response = client.post(
        reverse("changes:delegate", args=[approval.pk]), {"username": HTML}, follow=True
    )
    assert response.status_code == 200
    assert HTML not in response.content.decode()
    approval.refresh_from_db()
    assert approval.delegated_to is None


@pytest.mark.parametrize(
    "name, pk",
    [
        ("CHG-000123", 123),
        (" chg-123 ", 123),
        ("123", 123),
        ("CHG-000000000001", 1),
        ("CHG-", None),
        ("CHG-000000", None),
        ("CHG-12a", None),
        ("CHG-１２３", None),  # full-width digits are decimal, not ASCII
        ("9" * 13, None),  # past any id, and past bigint before long
        ("CHG--5", None),
        ("", None),
    ],
)
def test_a_change_is_named_by_its_id_in_one_way_everywhere(name, pk):
    assert ChangeRequest.pk_of(name) == pk
    if pk is not None:
        assert ChangeRequest.pk_of(ChangeRequest.public_id_of(pk)) == pk


@pytest.mark.parametrize("q", ["9" * 30, "CHG-" + "9" * 19, "CHG-000000"])
def test_searching_for_an_id_past_any_change_finds_nothing_without_an_error(client, requester, q):
    client.force_login(requester)
    response = client.get(reverse("changes:list"), {"q": q})
    assert response.status_code == 200
    assert "No changes match." in response.content.decode()
