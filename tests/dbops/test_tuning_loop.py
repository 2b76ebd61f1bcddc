"""The System tuning loop on a real pgbench workload against a throwaway cluster: an
adjustment that helps is kept, one that hurts is rolled back, every sample stored."""

from __future__ import annotations

import pytest
from django.urls import reverse

from changes.models import ChangeRequest
from dbops.configuration.models import ConfigurationChangeSet
from dbops.tuning.models import TuningAdjustment, TuningSample, TuningSession
from maintenance.services import change_procedure_add
from portal.errors import PortalError as ChangeError
from portal.models import AuditEvent
from tests.dbops.configuration_fixtures import (  # noqa: F401
    approve,
    approver_fixture,
    auto_conf,
    cluster_target,
    config_rules_fixture,
    run_in_window,
    show,
)
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db(transaction=True)

# count(DISTINCT k) over 100 000 random bigints sorts them: with 256kB of work_mem the
# sort spills to disk, with 32MB it stays in memory, with 64kB it spills in tiny runs.
# The loop judges by the temporary bytes the server counts (what a memory tuning is
# about, and steady on a busy host); throughput is recorded with every sample too.
TUNING = {
    "resource": "MEMORY",
    "metric": "temp_bytes",
    "workload": "sort",
    "rows": "100000",
    "clients": "2",
    "samples": "5",
    "sample_seconds": "1",
    "min_stabilise_seconds": "1",
    "max_stabilise_seconds": "8",
    "spread_percent": "50",
    "noise_percent": "10",
    "adjustments": "work_mem = 32MB\nwork_mem = 64kB",
}


def _tuning_change(target, operator, tenant, **params):
    change = ChangeRequestFactory(
        title="Tune work_mem for the sort-heavy reports",
        type="CONFIGURATION",
        priority="LOW",
        requester=operator,
        tenants=[tenant],
        components=[target.component],
    )
    change_procedure_add(
        change=change,
        by=operator,
        kind="db_system_tuning",
        params={"target": str(target.pk), **TUNING, **params},
    )
    return ChangeRequest.objects.get(pk=change.pk)


def test_the_loop_keeps_an_adjustment_that_helps_and_rolls_back_one_that_hurts(
    client, pg_cluster_factory, superuser, operator, approver, tenant, config_rules
):
    cluster = pg_cluster_factory(settings={"work_mem": "256kB"})
    target = cluster_target(cluster, superuser, tenants=[tenant], name="reports-cluster")
    change = approve(_tuning_change(target, operator, tenant), by=operator, approver=approver)

    [run] = run_in_window(change, operator)

    session = TuningSession.objects.get(run=run, purpose="TUNING")
    assert run.status == "SUCCEEDED", run.error
    first, second = TuningAdjustment.objects.filter(session=session).order_by("position")
    samples = TuningSample.objects.filter(session=session)

    def tps(**filters) -> float:
        values = sorted(s.tps for s in samples.filter(**filters))
        return values[len(values) // 2]

    print(  # the figures of this run, for the record (pytest -s shows them)
        f"\ntemp bytes per sample: baseline {session.baseline_median:.0f} (work_mem 256kB), "
        f"32MB {first.median:.0f} ({first.improvement_percent:+.1f}%, {first.status}), "
        f"64kB {second.median:.0f} ({second.improvement_percent:+.1f}%, {second.status}), "
        f"final {session.final_median:.0f}; median tps: baseline {tps(phase='BASELINE'):.2f}, "
        f"32MB {tps(phase='MEASURE', adjustment=first):.2f}, "
        f"64kB {tps(phase='MEASURE', adjustment=second):.2f}, final {tps(phase='FINAL'):.2f}"
    )
    assert first.status == TuningAdjustment.Status.KEPT, first.message
    assert first.improvement_percent == 100.0  # no spill at all
    assert second.status == TuningAdjustment.Status.ROLLED_BACK, second.message
    assert second.improvement_percent < 0
    assert second.reference_median == first.median
    assert show(cluster, "work_mem") == "32MB"
    assert auto_conf(cluster) == {"work_mem": "32MB"}
    assert session.status == TuningSession.Status.COMPLETED
    assert session.final_median == 0 < session.baseline_median
    assert tps(phase="MEASURE", adjustment=second) < tps(phase="MEASURE", adjustment=first)

    phases = {p: samples.filter(phase=p).count() for p in ("BASELINE", "MEASURE", "FINAL")}
    assert phases == {"BASELINE": 5, "MEASURE": 10, "FINAL": 5}, phases
    assert samples.filter(phase="STABILISE", adjustment=first).count() >= 3
    assert list(samples.values_list("seq", flat=True)) == list(range(1, samples.count() + 1))
    # The sorts' spills, as the server counted them: none once work_mem holds them.
    kept = samples.filter(phase="MEASURE", adjustment=first)
    hurt = samples.filter(phase="MEASURE", adjustment=second)
    assert all(s.temp_bytes == 0 for s in kept)
    assert all(s.temp_bytes > 0 for s in hurt)
    assert all(s.cpu_percent is not None for s in samples)  # the worker runs beside it

    sets = ConfigurationChangeSet.objects.filter(run=run).order_by("pk")
    assert [s.status for s in sets] == ["APPLIED", "ROLLED_BACK"]
    assert AuditEvent.objects.filter(action="dbops.tuning.adjustment_kept").count() == 1
    assert AuditEvent.objects.filter(action="dbops.tuning.adjustment_rolled_back").count() == 1
    with cluster.connect() as conn:
        assert not conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname LIKE 'portal_tuning_%%'"
        ).fetchall()

    client.force_login(operator)
    page = client.get(reverse("maintenance:run", args=[run.pk])).content.decode()
    assert 'data-testid="before-after-chart"' in page and "<circle" in page
    assert page.count('data-testid="adjustment"') == 2
    assert "baseline median" in page and "final median" in page


def test_a_tuning_adjustment_is_validated_like_a_configuration_change(
    pg_cluster_factory, superuser, operator, tenant, config_rules
):
    cluster = pg_cluster_factory()
    target = cluster_target(cluster, superuser, tenants=[tenant])
    change = ChangeRequestFactory(requester=operator, tenants=[tenant], type="CONFIGURATION")

    with pytest.raises(ChangeError) as refused:
        change_procedure_add(
            change=change,
            by=operator,
            kind="db_system_tuning",
            params={
                "target": str(target.pk),
                **TUNING,
                "adjustments": "work_mem = 32kB\nshared_buffers = 2GB\nmax_connections = 50",
            },
        )

    message = refused.value.message
    assert "Adjustment 1 refused" in message and "outside the valid range" in message
    assert "shared_buffers needs a restart" in message
    assert "max_connections_range" in message
    assert not change.procedures.exists()


def test_a_run_that_fails_midway_undoes_every_adjustment_it_made(
    pg_cluster_factory, superuser, operator, approver, tenant, config_rules
):
    cluster = pg_cluster_factory(settings={"work_mem": "256kB"})
    target = cluster_target(cluster, superuser, tenants=[tenant])
    # A custom workload that breaks once work_mem is tiny: the second adjustment cannot
    # be measured, so the run fails after the first was kept.
    change = _tuning_change(
        target,
        operator,
        tenant,
        workload="custom",
        metric="tps",
        setup_sql="CREATE TABLE numbers AS SELECT g AS n FROM generate_series(1, 1000) g",
        # (a constant 1 / 0 would be folded, and fail, when the query is planned)
        script="SELECT CASE WHEN current_setting('work_mem') = '64kB' "
        "THEN 1 / (count(*) - count(*)) ELSE count(*) END FROM numbers;\n",
        samples="3",
        noise_percent="0",
        adjustments="work_mem = 32MB\nwork_mem = 64kB",
    )
    change = approve(change, by=operator, approver=approver)

    [run] = run_in_window(change, operator)

    assert run.status == "ROLLED_BACK", run.error
    assert "The workload failed" in run.error and "division by zero" in run.error
    assert show(cluster, "work_mem") == "256kB"
    assert auto_conf(cluster) == {}
    session = TuningSession.objects.get(run=run)
    assert session.status == TuningSession.Status.FAILED
    second = session.adjustments.get(position=2)
    assert second.status == TuningAdjustment.Status.FAILED
    sets = ConfigurationChangeSet.objects.filter(run=run).order_by("pk")
    assert [s.status for s in sets] == ["ROLLED_BACK", "ROLLED_BACK"]
    assert run.steps.get(name="Roll back the kept adjustments").status == "SUCCEEDED"
    with cluster.connect() as conn:
        assert not conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname LIKE 'portal_tuning_%%'"
        ).fetchall()
