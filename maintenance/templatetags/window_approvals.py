"""What the window approvals partial offers the viewer for each approval."""

from __future__ import annotations

from django import template

from maintenance.calendar_selectors import window_decision_state

register = template.Library()


@register.simple_tag
def window_decision(user, approval, window, approvals) -> dict:
    """{"can_decide": bool, "refusal": str | None}; no queries (roles are cached)."""
    return window_decision_state(user, approval, window, approvals)
