"""Configuration and tuning results on run pages and reports, and the pending-restart
section of a target's health page."""

from __future__ import annotations

from django import template
from django.db.models import Prefetch

from dbops.configuration import selectors
from dbops.configuration.models import ConfigurationChangeSet
from dbops.tuning import chart
from dbops.tuning.metrics import METRICS
from dbops.tuning.models import TuningSample, TuningSession

register = template.Library()


def session_view(session: TuningSession) -> dict:
    samples = list(session.samples.all())
    label = METRICS.get(session.metric, (session.metric, True))[0]
    groups = []
    for phase, position in dict.fromkeys(
        (s.phase, s.adjustment.position if s.adjustment_id else None) for s in samples
    ):
        rows = [
            s
            for s in samples
            if s.phase == phase and (s.adjustment.position if s.adjustment_id else None) == position
        ]
        groups.append(
            {
                "phase": rows[0].get_phase_display(),
                "adjustment": position,
                "count": len(rows),
                "metric": chart.median_of(rows, session.metric),
                "tps": chart.median_of(rows, "tps"),
                "latency_ms": chart.median_of(rows, "latency_ms"),
                "cache_hit_ratio": chart.median_of(rows, "cache_hit_ratio"),
                "temp_bytes": chart.median_of(rows, "temp_bytes"),
                "checkpoints": sum(s.checkpoints or 0 for s in rows),
            }
        )
    baseline = session.baseline_median
    final = session.final_median
    if session.purpose == TuningSession.Purpose.OBSERVATION:
        baseline = chart.median_of([s for s in samples if s.phase == "BEFORE"], session.metric)
        final = chart.median_of([s for s in samples if s.phase == "AFTER"], session.metric)
    return {
        "session": session,
        "label": label,
        "chart": chart.build(samples, session.metric, label, baseline=baseline, final=final),
        "groups": groups,
        "samples": samples,
        "adjustments": list(session.adjustments.all()),
        "before": baseline,
        "after": final,
    }


@register.inclusion_tag("dbops/_procedure_result_body.html")
def procedure_result(run, for_report: bool = False):
    sets = list(
        ConfigurationChangeSet.objects.filter(run=run)
        .select_related("target")
        .prefetch_related("entries")
        .order_by("pk")
    )
    sessions = list(
        TuningSession.objects.filter(run=run)
        .prefetch_related(
            Prefetch(
                "samples",
                queryset=TuningSample.objects.select_related("adjustment").order_by("seq"),
            ),
            "adjustments",
        )
        .order_by("pk")
    )
    return {
        "run": run,
        "sets": sets,
        "sessions": [session_view(s) for s in sessions],
        "for_report": for_report,
    }


@register.inclusion_tag("dbops/_pending_restart.html")
def pending_restart_panel(target):
    return {"target": target, "pending": selectors.pending_restart(target)}
