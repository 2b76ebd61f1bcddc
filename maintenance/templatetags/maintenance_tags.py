"""The maintenance panel on the change page, without the changes app knowing of it."""

from __future__ import annotations

from django import template

from changes.models import State
from maintenance import selectors
from maintenance.models import ScheduledChange

register = template.Library()


@register.inclusion_tag("maintenance/_change_panel.html", takes_context=True)
def maintenance_panel(context, change):
    user = context["request"].user
    operator = selectors.is_operator(user)
    mine = change.requester_id == user.pk
    return {
        "request": context["request"],
        "csrf_token": context.get("csrf_token"),
        "change": change,
        "procedures": selectors.change_procedures(change),
        "runs": selectors.change_runs(change),
        "slot": ScheduledChange.objects.filter(change=change).select_related("window").first(),
        "is_operator": operator,
        "can_edit_procedures": (mine or operator)
        and change.state
        in (State.DRAFT, State.SUBMITTED, State.IN_REVIEW, State.APPROVED, State.SCHEDULED),
        "executed": change.state
        in (State.COMPLETED, State.FAILED, State.ROLLED_BACK, State.CLOSED),
        "can_review": (mine or operator)
        and change.state in (State.COMPLETED, State.FAILED, State.ROLLED_BACK),
    }
