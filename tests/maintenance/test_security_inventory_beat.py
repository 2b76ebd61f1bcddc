"""The hourly inventory refresh (issue 11, item 1), as beat sends it to a real worker:
every active component's versions are read again and each change is kept in the history;
a component whose discovery fails records why and does not stop the others; an inactive
one is left alone."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from maintenance.security.models import ComponentExecutor, InstalledPackage, VersionChange
from portal.celery import app
from tests.maintenance.execution_helpers import wait_until
from tests.maintenance.security_support import executor_for, write_executables

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_beat_refreshes_the_inventory_every_hour():
    entry = django_settings.CELERY_BEAT_SCHEDULE["security-refresh-inventory"]
    assert (entry["task"], entry["schedule"]) == ("security.refresh_inventory", 3600.0)


@pytest.fixture
def components(tmp_path, settings):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    state = tmp_path / "tinypkg.version"
    state.write_text("1.0\n")
    write_executables(
        scripts,
        {
            "inv.sh": f'#!/bin/sh\necho "tinypkg==$(cat {state})"\n',
            "broken.sh": "#!/bin/sh\necho 'inventory host unreachable' >&2\nexit 3\n",
            "noop.sh": "#!/bin/sh\n",
        },
    )
    settings.MAINTENANCE_SCRIPTS_DIR = str(scripts)

    def make(name: str, discover: str) -> ComponentExecutor:
        config = {"ecosystem": "PyPI", "discover": discover, "backup": "noop.sh",
                  "patch": "noop.sh", "verify": "noop.sh", "rollback": "noop.sh"}  # fmt: skip
        return executor_for(name, "script", config)

    # "broken" sorts first: the refresh meets the failure before the others.
    made = {
        "broken": make("a-broken-api", "broken.sh"),
        "billing": make("billing-api", "inv.sh"),
        "retired": make("retired-api", "inv.sh"),
    }
    ComponentExecutor.objects.filter(pk=made["retired"].pk).update(is_active=False)
    return made, state


def test_the_worker_refreshes_every_active_component_and_keeps_the_history(
    celery_worker, components
):
    made, state = components
    app.send_task("security.refresh_inventory")
    wait_until(
        lambda: InstalledPackage.objects.filter(executor=made["billing"], version="1.0").exists(),
        what="the first refresh",
    )

    state.write_text("1.1\n")  # someone patched the host by hand
    app.send_task("security.refresh_inventory")
    wait_until(
        lambda: InstalledPackage.objects.filter(executor=made["billing"], version="1.1").exists(),
        what="the second refresh",
    )

    history = list(
        VersionChange.objects.filter(executor=made["billing"])
        .order_by("observed_at", "pk")
        .values_list("name", "version_before", "version_after")
    )
    assert history == [("tinypkg", "", "1.0"), ("tinypkg", "1.0", "1.1")]
    broken = ComponentExecutor.objects.get(pk=made["broken"].pk)
    assert broken.last_error == "broken.sh exited with status 3: inventory host unreachable"
    assert broken.last_refreshed_at is None
    assert not InstalledPackage.objects.filter(executor=made["retired"]).exists()
    assert ComponentExecutor.objects.get(pk=made["retired"].pk).last_refreshed_at is None
