"""Each seed rule, dependency and constraint, and the target's own pg_settings bounds,
refuse clearly (naming rule, value and limit) and nothing is applied or written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from changes.models import ChangeRequest
from dbops.configuration import rules
from dbops.configuration import settings as pg
from dbops.configuration.models import ConfigurationChangeSet, ConfigurationRule
from dbops.configuration.services import configuration_set_check
from dbops.configuration.validation import enabled_rules
from dbops.models import QueryStatsSnapshot
from portal.models import AuditEvent
from tests.dbops.configuration_fixtures import auto_conf, cluster_target, config_rules_fixture  # noqa: F401

pytestmark = pytest.mark.django_db
GB = 1024**3


@pytest.fixture(scope="module")
def throwaway_cluster():
    """One cluster for the module: these tests only read its settings (and check that
    a refusal leaves them alone), so they need not each start their own."""
    from tests.services import PgCluster

    with PgCluster() as cluster:
        yield cluster


@pytest.fixture
def target(throwaway_cluster, superuser, tenant, config_rules):
    return cluster_target(throwaway_cluster, superuser, tenants=[tenant], name="claims-cluster")


def _post(client, target, rows, action="propose"):
    data = {"action": action, "parameter": [r[0] for r in rows], "value": [r[1] for r in rows]}
    return client.post(reverse("dbops:configuration_propose", args=[target.pk]), data)


def _failing(validation) -> dict[str, rules.Verdict]:
    return {v.rule: v for v in validation.failures}


REFUSALS = [
    # (rows, the rule that refuses, its value, its limit)
    ([("max_connections", "50")], "max_connections_range", "50", ">= 100 and <= 1000"),
    ([("max_connections", "1001")], "max_connections_range", "1001", ">= 100 and <= 1000"),
    ([("shared_buffers", "512MB")], "shared_buffers_minimum", "512MB", ">= 1024MB"),
    ([("shared_buffers", "131071")], "shared_buffers_minimum", "1048568kB", ">= 1024MB"),
    ([("work_mem", "32kB")], "PG_SETTINGS", "32kB", "64 .. 2147483647 × kB"),
    ([("work_mem", "64mb")], "PG_SETTINGS", "64mb", "64 .. 2147483647 × kB"),
    ([("statement_timeout", "5 parsecs")], "PG_SETTINGS", "5 parsecs", "0 .. 2147483647 × ms"),
    ([("wal_level", "verbose")], "PG_SETTINGS", "verbose", "one of minimal, replica, logical"),
    ([("enable_seqscan", "maybe")], "PG_SETTINGS", "maybe", "on or off"),
    ([("random_page_cost", "-1")], "PG_SETTINGS", "-1", "0 .. 1.79769e+308"),
    ([("no_such_parameter", "1")], "PG_SETTINGS", "1", "a parameter in pg_settings"),
    ([("block_size", "16384")], "PG_SETTINGS", "16384", "a settable parameter"),
    ([("archive_command", "rm -rf /")], "PORTAL_POLICY", "rm -rf /", "not changed by the portal"),
]


@pytest.mark.parametrize(("rows", "rule", "value", "limit"), REFUSALS)
def test_it_refuses_a_set_breaking_a_rule_and_applies_and_writes_nothing(
    client, operator, target, throwaway_cluster, rows, rule, value, limit
):
    client.force_login(operator)
    before = auto_conf(throwaway_cluster)

    response = _post(client, target, [*rows, ("checkpoint_completion_target", "0.8")])

    assert response.status_code == 400
    page = response.content.decode()
    assert f'data-rule="{rule}" data-passed="false"' in page
    failing = [v for v in response.context["validation"].failures if v.rule == rule]
    assert failing and failing[0].value == value and limit in failing[0].limit
    assert ChangeRequest.objects.count() == 0
    assert ConfigurationChangeSet.objects.count() == 0
    assert auto_conf(throwaway_cluster) == before
    denied = AuditEvent.objects.get(action="dbops.configuration.refused")
    assert denied.outcome == AuditEvent.Outcome.DENIED and rule in denied.details["reason"]


def test_the_seed_ranges_pass_at_their_limits(operator, target):
    validation = configuration_set_check(
        target=target,
        entries=[("max_connections", "100"), ("shared_buffers", "1GB")],
        by=operator,
    )

    verdicts = {v.rule: v for v in validation.verdicts}
    assert validation.ok, validation.summary()
    assert verdicts["max_connections_range"].passed
    assert verdicts["shared_buffers_minimum"].value == "1GB"
    assert validation.restart_required == ["max_connections", "shared_buffers"]


def test_total_memory_limit_adds_up_the_formula_against_the_targets_ram(operator, target):
    target.memory_bytes = 2 * GB
    target.save(update_fields=["memory_bytes"])

    validation = configuration_set_check(target=target, entries=[("work_mem", "64MB")], by=operator)

    limit = _failing(validation)["TOTAL_MEMORY_LIMIT"]
    # 128MB shared_buffers + 100 × 64MB + 3 × 64MB + 4MB wal_buffers = 6724MB
    assert limit.value == "6.6 GiB"
    assert limit.limit == "<= 75% of RAM = 1.5 GiB"
    assert "100 max_connections × work_mem 64 MiB × 1.00" in limit.message
    passed = {v.rule: v for v in validation.verdicts}["SYSTEM_MEMORY"]
    assert passed.passed and "configured on the target" in passed.message


def test_the_share_of_ram_is_data_an_admin_edits(operator, target):
    target.memory_bytes = 8 * GB
    target.save(update_fields=["memory_bytes"])
    ConfigurationRule.objects.filter(code="TOTAL_MEMORY_LIMIT").update(share_percent=5)

    validation = configuration_set_check(target=target, entries=[("work_mem", "4MB")], by=operator)

    assert _failing(validation)["TOTAL_MEMORY_LIMIT"].limit == "<= 5% of RAM = 409.6 MiB"


def test_performance_requirements_want_the_observed_peak_plus_headroom(operator, target):
    QueryStatsSnapshot.objects.create(
        target=target,
        taken_at=timezone.now() - timedelta(days=1),
        trigger="SCHEDULED",
        connections_used=150,
    )

    refused = configuration_set_check(
        target=target, entries=[("max_connections", "150")], by=operator
    )
    allowed = configuration_set_check(
        target=target, entries=[("max_connections", "200")], by=operator
    )

    verdict = _failing(refused)["PERFORMANCE_REQUIREMENTS"]
    assert verdict.value == "150" and verdict.limit == ">= 183"  # ceil(150 × 1.2) + 3 reserved
    users = {v.rule: v for v in refused.verdicts}["CONCURRENT_USERS"]
    assert users.passed and users.value == "150" and "observed peak 150" in users.message
    assert allowed.ok, allowed.summary()


def test_the_configured_concurrent_users_count_too(operator, target):
    target.expected_concurrent_users = 300
    target.save(update_fields=["expected_concurrent_users"])

    validation = configuration_set_check(
        target=target, entries=[("max_connections", "200")], by=operator
    )

    assert _failing(validation)["PERFORMANCE_REQUIREMENTS"].limit == ">= 363"


def _rows(cluster, names):
    with cluster.connect() as conn:
        return pg.read(conn, [*names, *rules.CONTEXT_PARAMETERS])


def test_memory_settings_need_the_system_memory_dependency(throwaway_cluster, config_rules):
    settings = _rows(throwaway_cluster, ["work_mem"])

    validation = rules.validate(
        [("work_mem", "8MB")], settings, rules.Facts(ram_bytes=None), enabled_rules()
    )

    failing = _failing(validation)
    assert failing["SYSTEM_MEMORY"].value == "unknown"
    assert "configure it on the target" in failing["SYSTEM_MEMORY"].message
    assert "RAM is unknown" in failing["TOTAL_MEMORY_LIMIT"].message


def test_max_connections_needs_the_concurrent_users_dependency(throwaway_cluster, config_rules):
    settings = _rows(throwaway_cluster, ["max_connections"])

    validation = rules.validate(
        [("max_connections", "200")], settings, rules.Facts(ram_bytes=8 * GB), enabled_rules()
    )

    failing = _failing(validation)
    assert failing["CONCURRENT_USERS"].value == "unknown"
    assert "PERFORMANCE_REQUIREMENTS" in failing


def test_a_disabled_rule_is_not_applied(operator, target):
    ConfigurationRule.objects.filter(code="max_connections_range").update(enabled=False)

    validation = configuration_set_check(
        target=target, entries=[("max_connections", "1001")], by=operator
    )

    assert validation.ok, validation.summary()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("work_mem", "4MB"), ("WORK_MEM", "8MB")], "appears twice"),
        ([("", "4MB")], "no parameter"),
        ([("work_mem", "")], "give the new value"),
        ([("", "")], "at least one parameter"),
    ],
)
def test_bad_rows_get_a_clear_400(client, operator, target, rows, message):
    client.force_login(operator)

    response = _post(client, target, rows)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert ChangeRequest.objects.count() == 0


def test_rows_without_their_pair_are_refused(client, operator, target):
    client.force_login(operator)
    url = reverse("dbops:configuration_propose", args=[target.pk])

    response = client.post(url, {"action": "check", "parameter": ["work_mem", "x"], "value": "1"})

    assert response.status_code == 400
    assert "Each row needs a parameter and a value" in response.content.decode()
