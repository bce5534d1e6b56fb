"""Charts drawn on the server as inline SVG (no JavaScript, no CDN, nothing the console's CSP
would refuse): stacked bars, one bar per label. Each chart is an image to assistive technology
(`role="img"`, a `<title>` and a `<desc>` summing it up); the figures themselves are in the table
the page shows beside it, which is also the chart's CSV export. Colours only by presentation
attributes (the console allows no inline style), each series with at least 3:1 contrast against
white (WCAG 1.4.11), and named in a legend."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#0a58ca", "#8c1d18", "#1e7b34", "#6f42c1", "#9a4f00", "#3d4148")
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 16, 28
TEXT = "#1a1a1a"
GRID = "#c9ccd1"


def nice_ceiling(value: float) -> float:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at least `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | int | None]]],
    *,
    short_label: int = 0,
) -> str:
    """A stacked bar chart as SVG markup (every text escaped). `labels` name the bars; each of
    `series` is (name, one value per label; None counts as 0). `short_label` > 0 prints only that
    many last characters of a label (`2026-12-04` → `12-04`)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    stacks = [sum(float(s[1][i] or 0) for s in series) for i in range(len(labels))]
    top = nice_ceiling(max(stacks, default=0.0))
    n = max(len(labels), 1)
    slot = plot_w / n
    bar_w = max(min(slot * 0.7, 48.0), 1.0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'preserveAspectRatio="xMinYMin meet" font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-d">{escape(description)}</desc>',
    ]
    for fraction in (0.0, 0.5, 1.0):  # grid lines and the y axis's figures
        y = TOP + plot_h * (1 - fraction)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{GRID}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{TEXT}">{_number(top * fraction)}</text>'
        )
    every = max(1, math.ceil(n / 10))  # at most about ten labels under the bars
    for i, label in enumerate(labels):
        x = LEFT + slot * i + (slot - bar_w) / 2
        base = float(TOP + plot_h)
        for k, (_name, values) in enumerate(series):
            value = float(values[i] or 0)
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            out.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="{PALETTE[k % len(PALETTE)]}"/>')  # fmt: skip
        if i % every == 0:
            shown = label[-short_label:] if short_label else label
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                       f'fill="{TEXT}">{escape(shown)}</text>')  # fmt: skip
    out.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="{TEXT}" stroke-width="1"/>'
    )
    out.append("</svg>")
    return "".join(out)


def legend(names: Sequence[str]) -> str:
    """The series' names with their colours, as HTML under the chart (it wraps, an SVG would not)."""
    items = "".join(
        f'<li><svg width="12" height="12" viewBox="0 0 12 12" aria-hidden="true" focusable="false">'
        f'<rect width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/></svg> {escape(name)}</li>'
        for k, name in enumerate(names)
    )
    return f'<ul class="legend">{items}</ul>'
