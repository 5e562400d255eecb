"""A 24 h sparkline as a tiny inline SVG image: dozens of them cost a few hundred bytes each,
where a plotly figure per card would cost a graph component and its JavaScript each."""

from __future__ import annotations

import math
from collections.abc import Sequence
from urllib.parse import quote

from dash import html

WIDTH, HEIGHT, PAD = 120, 32, 2


def sparkline_path(values: Sequence[float | None]) -> str:
    """SVG path data through the values, broken where a value is missing (no invented line)."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    parts: list[str] = []
    pen_down = False
    for i, value in enumerate(values):
        if value is None or not math.isfinite(value):
            pen_down = False
            continue
        x = PAD + i * step
        y = HEIGHT - PAD - (value - low) / span * (HEIGHT - 2 * PAD)
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    return "".join(parts)


def sparkline(
    values: Sequence[float | None], colour: str, label: str, class_name: str = "sparkline"
) -> html.Img:
    """`label` is the image's accessible text (for instance "24 h: 35 → 48 µg/m³")."""
    path = sparkline_path(values)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none">'
        f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.6" '
        'stroke-linejoin="round" stroke-linecap="round" vector-effect="non-scaling-stroke"/></svg>'
    )
    return html.Img(src="data:image/svg+xml," + quote(svg), alt=label, title=label, className=class_name)
