"""Server-rendered SVG bar charts (no script, no CDN): presentation attributes only, so
the page's Content-Security-Policy, which forbids inline styles and scripts, allows them."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from compliance.kpis import Kpi

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 56
COLOURS = ("#2f6db5", "#d9822b", "#3a9d5d", "#b23b3b")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    for step in (1, 2, 2.5, 5, 10):
        magnitude = 10 ** (len(str(int(value))) - 1)
        top = step * magnitude
        if top >= value:
            return top
    return value


def bar_chart(kpi: Kpi) -> SafeString:
    labels = kpi.labels
    series = list(kpi.series.items())
    if not labels:
        return mark_safe("")
    if kpi.stacked:
        peak = max(
            (sum(v or 0 for v in col) for col in zip(*[s for _, s in series], strict=False)),
            default=0,
        )
    else:
        peak = max((v or 0 for _, values in series for v in values), default=0)
    top = 100.0 if kpi.unit == "%" else _nice_max(float(peak))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(labels)
    groups = 1 if kpi.stacked else len(series)
    bar_w = max(2.0, slot * 0.7 / groups)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-labelledby="chart-{kpi.key}-title" class="kpi-chart">',
        f'<title id="chart-{kpi.key}-title">{escape(kpi.title)}</title>',
    ]
    for i in range(5):  # gridlines and the y axis' labels
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#dde2e8"/>'
        )
        shown = f"{value:g}{escape(kpi.unit)}"
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end" '
            f'fill="#555">{shown}</text>'
        )
    for index, label in enumerate(labels):
        x0 = LEFT + slot * index + (slot - bar_w * groups) / 2
        base = TOP + plot_h
        for s_index, (name, values) in enumerate(series):
            value = values[index]
            if value is None:
                continue
            h = plot_h * min(float(value), top) / top
            x = x0 if kpi.stacked else x0 + bar_w * s_index
            y = base - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[s_index % len(COLOURS)]}"><title>{escape(name)} '
                f"{escape(label)}: {value:g}{escape(kpi.unit)}</title></rect>"
            )
            if kpi.stacked:
                base = y
        cx = LEFT + slot * index + slot / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{TOP + plot_h + 14}" font-size="10" text-anchor="end" '
            f'fill="#333" transform="rotate(-35 {cx:.1f} {TOP + plot_h + 14})">'
            f"{escape(label[:18])}</text>"
        )
    for s_index, (name, _values) in enumerate(series):  # legend
        x = LEFT + s_index * 150
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 12}" width="10" height="10" '
            f'fill="{COLOURS[s_index % len(COLOURS)]}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 3}" font-size="10" fill="#333">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every text above is escaped)
