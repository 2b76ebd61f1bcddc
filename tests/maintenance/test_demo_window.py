from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from maintenance.models import MaintenanceWindow
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_a_demo_window_opens_minutes_from_now_and_is_audited():
    out = StringIO()
    call_command("open_demo_window", "--in-minutes", "2", "--duration", "45", stdout=out)
    window = MaintenanceWindow.objects.get()
    assert window.type == "ROUTINE" and window.duration_minutes == 45
    assert 0 < (window.start - timezone.now()).total_seconds() <= 120
    assert f"/windows/{window.pk}/" in out.getvalue()
    assert AuditEvent.objects.filter(action="window.demo_opened").exists()


def test_a_demo_window_longer_than_the_routine_maximum_is_refused():
    with pytest.raises(CommandError, match="between 1 and 240"):
        call_command("open_demo_window", "--duration", "300")
    assert not MaintenanceWindow.objects.exists()
