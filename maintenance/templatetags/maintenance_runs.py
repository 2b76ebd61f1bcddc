"""A run's card (steps, progress, figures, the operator's buttons) for any page."""

from __future__ import annotations

from django import template

from maintenance import access, presentation

register = template.Library()


@register.inclusion_tag("maintenance/_run.html", takes_context=True)
def run_card(context, run):
    request = context["request"]
    return run_context(request, run) | {"csrf_token": context.get("csrf_token")}


def run_context(request, run) -> dict:
    return {
        "request": request,
        "run": run,
        "actions": access.run_actions(request.user, run),
        "figures": presentation.figures(run.procedure.kind, run.result),
        "steps": [(step, presentation.labelled(step.result)) for step in run.steps.all()],
    }


@register.filter
def readable(value) -> str:
    return presentation.display(value)
