"""The before/after chart of a session's samples, as numbers a template draws as SVG.

Server-rendered, no script: every sample is a dot at (order taken, value of the
session's metric), coloured by phase; dashed lines mark the baseline and final
medians; adjustments are separated by vertical rules. The template escapes every
label, and the numbers here are plain floats.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

PHASE_COLOURS = {
    "BASELINE": "#6b7280",
    "BEFORE": "#6b7280",
    "STABILISE": "#c4b5fd",
    "MEASURE": "#2563eb",
    "FINAL": "#059669",
    "AFTER": "#059669",
}
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40


@dataclass
class Dot:
    x: float
    y: float
    colour: str
    title: str


@dataclass
class Rule:
    x: float
    label: str


@dataclass
class Level:
    y: float
    label: str
    colour: str
    x: float = 0.0
    anchor: str = "end"


@dataclass
class Tick:
    y: float
    label: str


@dataclass
class Chart:
    metric: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    plot_bottom: float = HEIGHT - BOTTOM
    plot_right: float = WIDTH - RIGHT
    dots: list[Dot] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    path: str = ""


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def build(samples: list, metric: str, label: str, *, baseline=None, final=None) -> Chart | None:
    """``samples``: TuningSample rows in order. None when no sample has the metric."""
    points = [(s, getattr(s, metric)) for s in samples if getattr(s, metric) is not None]
    if not points:
        return None
    values = [float(v) for _s, v in points]
    levels = [v for v in (baseline, final) if v is not None]
    low, high = min([*values, *levels]), max([*values, *levels])
    if high == low:
        high, low = high + (abs(high) or 1) * 0.05, low - (abs(low) or 1) * 0.05
    pad = (high - low) * 0.08
    low, high = max(low - pad, 0) if low >= 0 else low - pad, high + pad
    chart = Chart(metric=label)
    span_x = chart.plot_right - chart.left
    span_y = chart.plot_bottom - chart.top

    def x_of(i: int) -> float:
        return round(chart.left + span_x * (i + 0.5) / len(points), 2)

    def y_of(v: float) -> float:
        return round(chart.plot_bottom - span_y * (v - low) / (high - low), 2)

    previous = object()
    for i, (sample, value) in enumerate(points):
        position = sample.adjustment.position if sample.adjustment_id else None
        if position != previous and position is not None:
            chart.rules.append(Rule(round(x_of(i) - span_x / len(points) / 2, 2), f"A{position}"))
        previous = position
        chart.dots.append(
            Dot(
                x_of(i),
                y_of(float(value)),
                PHASE_COLOURS.get(sample.phase, "#111827"),
                f"#{sample.seq} {sample.get_phase_display()}"
                + (f" (adjustment {position})" if position else "")
                + f": {_fmt(float(value))}",
            )
        )
    chart.path = " ".join(f"{'M' if i == 0 else 'L'}{d.x},{d.y}" for i, d in enumerate(chart.dots))
    # The baseline's label on the left, the final one on the right: they may sit close.
    if baseline is not None:
        chart.levels.append(
            Level(
                y_of(baseline),
                f"baseline median {_fmt(baseline)}",
                "#6b7280",
                chart.left + 4,
                "start",
            )
        )
    if final is not None:
        chart.levels.append(
            Level(y_of(final), f"final median {_fmt(final)}", "#059669", chart.plot_right, "end")
        )
    for n in range(5):
        v = low + (high - low) * n / 4
        chart.ticks.append(Tick(y_of(v), _fmt(v)))
    seen = []
    for sample, _v in points:
        if sample.phase not in seen:
            seen.append(sample.phase)
    chart.legend = [(PHASE_COLOURS.get(p, "#111827"), p.title()) for p in seen]
    return chart


def median_of(samples: list, metric: str) -> float | None:
    values = [float(getattr(s, metric)) for s in samples if getattr(s, metric) is not None]
    return float(statistics.median(values)) if values else None
