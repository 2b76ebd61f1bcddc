"""Every configuration URL for every role, on the user's own tenant's target and on
another tenant's: the target pages' rule (403 without database operations, 404 for a
target the user may not see), and nothing written on a refusal."""

from __future__ import annotations

import pytest
from django.urls import reverse

from changes.models import ChangeRequest
from dbops.configuration.models import ConfigurationChangeSet
from portal.models import AuditEvent
from tests.dbops.configuration_fixtures import config_rules_fixture  # noqa: F401
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db

ROLES = [
    "requester",
    "engineer",
    "operator",
    "security",
    "compliance",
    "cto",
    "ciso",
    "outsider",
    "superuser",
]
NON_OPS = {"requester", "security", "compliance", "cto", "ciso"}
TARGET_GETS = [
    "dbops:configuration_history",
    "dbops:configuration_propose",
    "dbops:configuration_suggest",
    "dbops:configuration_export",
]
VALID_SET = {"action": "propose", "parameter": ["random_page_cost"], "value": ["1.1"]}


@pytest.fixture
def targets(make_target, tenant, other_tenant, superuser, config_rules):
    """acme's target (the role users' tenant) and globex's (the outsider's), each with a
    recorded change set."""
    made = {
        "own": make_target(name="acme-db", tenants=[tenant]),
        "other": make_target(name="globex-db", tenants=[other_tenant]),
    }
    for key, target in made.items():
        change = ChangeRequestFactory(
            requester=superuser,
            type="CONFIGURATION",
            tenants=[tenant if key == "own" else other_tenant],
            components=[target.component],
        )
        ConfigurationChangeSet.objects.create(target=target, change=change, proposed_by=superuser)
    return made


def _expected(role: str, which: str) -> int:
    if role in NON_OPS:
        return 403
    if role == "superuser":
        return 200
    sees = "other" if role == "outsider" else "own"
    return 200 if which == sees else 404


@pytest.mark.parametrize("which", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
def test_every_configuration_page_follows_the_target_rule(client, request, targets, role, which):
    client.force_login(request.getfixturevalue(role))
    target = targets[which]
    change_set = ConfigurationChangeSet.objects.get(target=target)
    expected = _expected(role, which)

    for name in TARGET_GETS:
        response = client.get(reverse(name, args=[target.pk]))
        assert response.status_code == expected, (name, role, which, response.status_code)
    response = client.get(reverse("dbops:configuration_set", args=[change_set.pk]))
    assert response.status_code == expected, ("configuration_set", role, which)


@pytest.mark.parametrize("which", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
def test_proposing_follows_the_target_rule_and_a_refusal_writes_nothing(
    client, request, targets, role, which
):
    client.force_login(request.getfixturevalue(role))
    target = targets[which]
    changes, sets = ChangeRequest.objects.count(), ConfigurationChangeSet.objects.count()
    events = AuditEvent.objects.exclude(outcome=AuditEvent.Outcome.DENIED).count()
    expected = _expected(role, which)

    response = client.post(reverse("dbops:configuration_propose", args=[target.pk]), VALID_SET)

    if expected == 200:
        assert response.status_code == 302, response.content.decode()[:500]
        assert ConfigurationChangeSet.objects.count() == sets + 1
        assert ConfigurationChangeSet.objects.latest("pk").target == target
    else:
        assert response.status_code == expected
        assert ChangeRequest.objects.count() == changes
        assert ConfigurationChangeSet.objects.count() == sets
        assert AuditEvent.objects.exclude(outcome=AuditEvent.Outcome.DENIED).count() == events


@pytest.mark.parametrize("name", [*TARGET_GETS, "dbops:configuration_set"])
def test_an_unknown_target_or_set_is_404(client, operator, name):
    client.force_login(operator)

    assert client.get(reverse(name, args=[987654])).status_code == 404


def test_the_export_is_audited_and_anonymous_users_sign_in_first(client, operator, targets):
    target = targets["own"]
    url = reverse("dbops:configuration_export", args=[target.pk])

    assert client.get(url).status_code == 302
    client.force_login(operator)
    response = client.get(url)
    body = b"".join(response.streaming_content).decode()

    assert response["Content-Type"].startswith("text/plain")
    assert "# Non-default settings of acme-db" in body
    assert AuditEvent.objects.filter(
        action="dbops.configuration.exported", object_id=str(target.pk)
    ).exists()


@pytest.mark.parametrize("sets", [2, 30])
def test_the_history_page_has_bounded_queries(
    client, operator, targets, superuser, tenant, sets, django_assert_max_num_queries
):
    target = targets["own"]
    for _ in range(sets):
        change = ChangeRequestFactory(requester=superuser, type="CONFIGURATION", tenants=[tenant])
        change_set = ConfigurationChangeSet.objects.create(
            target=target, change=change, proposed_by=superuser
        )
        change_set.entries.create(position=1, parameter="work_mem", new_value="8MB")
    client.force_login(operator)

    with django_assert_max_num_queries(16):
        response = client.get(reverse("dbops:configuration_history", args=[target.pk]))

    assert response.status_code == 200
    assert response.content.decode().count('data-testid="history-row"') == min(sets + 1, 25)


def test_an_admin_edits_a_rule_and_the_edit_is_audited(client, superuser, config_rules):
    from dbops.configuration.models import ConfigurationRule

    rule = ConfigurationRule.objects.get(code="max_connections_range")
    client.force_login(superuser)
    url = reverse("admin:dbops_configurationrule_change", args=[rule.pk])

    response = client.post(
        url,
        {
            "code": rule.code,
            "rule_type": "RANGE",
            "parameter": "max_connections",
            "minimum": "100",
            "maximum": "500",
            "enabled": "on",
            "description": rule.description,
        },
    )

    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.maximum == "500"
    event = AuditEvent.objects.get(action="dbops.configuration_rule.updated")
    assert event.details["fields"] == ["maximum"] and event.details["maximum"] == "500"


def test_the_admin_refuses_a_range_rule_without_limits(client, superuser, config_rules):
    from dbops.configuration.models import ConfigurationRule

    rule = ConfigurationRule.objects.get(code="max_connections_range")
    client.force_login(superuser)
    url = reverse("admin:dbops_configurationrule_change", args=[rule.pk])

    response = client.post(
        url,
        {"code": rule.code, "rule_type": "RANGE", "parameter": "max_connections", "enabled": "on"},
    )

    assert response.status_code == 200
    assert "A range rule needs a minimum, a maximum or both." in response.content.decode()
    rule.refresh_from_db()
    assert rule.maximum == "1000"
    assert not AuditEvent.objects.filter(action="dbops.configuration_rule.updated").exists()
