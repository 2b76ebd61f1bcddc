"""What dbops shows on portal and change pages: Database ops in the navigation, target
health warnings on the operator's dashboard, an index proposal's before/after on its
change page."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from dbops import access
from dbops.models import IndexSuggestion
from portal import registry

STALE_CHECK = timedelta(days=1)


def _index_panel(request, change) -> dict | None:
    # One suggestion a change at most, and few changes have one: asked without an order
    # or the target's row (read only when there is a suggestion to show).
    try:
        suggestion = IndexSuggestion.objects.get(change=change)
    except IndexSuggestion.DoesNotExist:
        return None
    return {"suggestion": suggestion, "change": change}


def _health_warnings(request) -> dict:
    """From what the portal already knows (the last connection check), never a live
    connection: the dashboard must answer fast whatever the targets do."""
    now = timezone.now()
    warnings = []
    for target in access.targets_visible_to(request.user).filter(is_active=True).order_by("name"):
        check = target.last_check or {}
        if not target.last_checked_at:
            warnings.append((target, "never checked"))
        elif not check.get("ok", False):
            warnings.append((target, check.get("error") or "the last check failed"))
        elif check.get("missing"):
            warnings.append((target, "missing privileges: " + ", ".join(check["missing"])))
        elif now - target.last_checked_at > STALE_CHECK:
            warnings.append((target, "not checked for more than a day"))
    return {"warnings": warnings[:10]}


def register() -> None:
    registry.register_nav(
        "Database ops", "dbops:targets", allowed=access.is_database_operator, order=40
    )
    registry.register_dashboard_panel(
        "target_health",
        "dbops/_dash_health.html",
        _health_warnings,
        order=6,
        allowed=access.is_database_operator,
    )
    registry.register_change_panel(
        "index_suggestion", "dbops/_change_index.html", _index_panel, order=20
    )
