"""What the window approvals partial offers the viewer for each approval."""

from __future__ import annotations

from django import template

from maintenance import access

register = template.Library()


@register.simple_tag
def window_decision(user, approval) -> dict:
    """The viewer's actions on one window approval (decide, delegate, revoke), from the
    same rule the services enforce."""
    return access.window_approval_actions(user, approval)
