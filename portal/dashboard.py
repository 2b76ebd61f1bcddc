"""The dashboard is each role's home: the panels the apps register for whoever may see
them (an operator's windows and runs, an approver's overdue decisions, compliance's
ratifications), then the viewer's recent notifications."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal import registry
from portal.selectors import notifications_for


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "panels": registry.dashboard_panels(request),
        "notifications": notifications_for(request.user, limit=5),
    }
