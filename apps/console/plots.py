"""Small line charts as inline SVG, drawn on the server (no plotting library, no script).

:func:`line_chart` returns None when there is nothing to draw, so a page shows a message instead
of an empty frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 40
PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"]


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    color: str = ""
    width: float = 1.5
    dots: bool = False


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high``."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def integer_ticks(high: float, count: int = 6) -> list[int]:
    """Whole-number ticks from 1 to ``high`` (rounds are counted, never fractional)."""
    top = max(math.ceil(high), 1)
    step = max(int(nice_ticks(max(top - 1, 1), count)[1]), 1)
    return [1, *range(step, top + 1, step)] if step > 1 else list(range(1, top + 1))


def _label(value: float) -> str:
    return f"{value:g}"


def line_chart(
    series: Sequence[Series], *, title: str, x_label: str, y_label: str
) -> SafeString | None:
    """An SVG chart of ``series`` (x from 1 up, y from 0 up); None when no series has a point."""
    drawn = [s for s in series if s.points]
    if not drawn:
        return None
    x_max = max(max(x for x, _ in s.points) for s in drawn)
    y_ticks = nice_ticks(max(max(y for _, y in s.points) for s in drawn))
    x_ticks = integer_ticks(x_max)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x_span = x_max - 1

    def sx(x: float) -> float:  # a single round sits in the middle
        return LEFT + ((x - 1) / x_span if x_span else 0.5) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - y / y_ticks[-1] * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for tick in y_ticks:
        y = sy(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(tick)}</text>'
        )
    for tick in x_ticks:
        parts.append(
            f'<text x="{sx(tick):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{tick}</text>'
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text x="12" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    for index, s in enumerate(drawn):
        color = s.color or PALETTE[index % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{color}" '
            f'stroke-width="{s.width}" class="series"><title>{escape(s.name)}</title></polyline>'
        )
        if s.dots or len(s.points) == 1:
            parts += [
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"/>'
                for x, y in s.points
            ]
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch" style="background:{s.color or PALETTE[i % len(PALETTE)]}">'
        f"</span>{escape(s.name)}</li>"
        for i, s in enumerate(drawn)
    )
    return mark_safe(
        f'<figure class="plot">{"".join(parts)}<ul class="legend">{legend}</ul></figure>'
    )


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    highlight: bool = False
    group: int | None = None  # coloured by group (e.g. the CoPL expert a user is routed to)


def scatter_chart(points: Sequence[Point], *, title: str) -> SafeString | None:
    """An SVG scatter of 2-D points (the user-embedding map), coloured by group, highlighted
    points ringed and named; None when there are none."""
    if not points:
        return None
    xs, ys = [p.x for p in points], [p.y for p in points]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(ys), max(ys)
    plot_w, plot_h = WIDTH - 2 * RIGHT, HEIGHT - TOP - RIGHT

    def scale(value: float, lo: float, hi: float, size: float) -> float:
        return size / 2 if hi == lo else (value - lo) / (hi - lo) * size

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="{RIGHT}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for p in sorted(points, key=lambda p: p.highlight):
        cx = RIGHT + scale(p.x, x_lo, x_hi, plot_w)
        cy = TOP + plot_h - scale(p.y, y_lo, y_hi, plot_h)
        color = PALETTE[(p.group or 0) % len(PALETTE)]
        radius = 7 if p.highlight else 4
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius}" fill="{color}" fill-opacity="0.75"'
            + (' stroke="#111827" stroke-width="2.5"' if p.highlight else "")
            + f"><title>{escape(p.label)}</title></circle>"
        )
        if p.highlight:
            parts.append(f'<text x="{cx + 8:.1f}" y="{cy + 4:.1f}">{escape(p.label)}</text>')
    parts.append("</svg>")
    return mark_safe(f'<figure class="plot">{"".join(parts)}</figure>')
