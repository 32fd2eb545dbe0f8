"""A small self-contained SVG line chart: accuracy against pool size (no plotting library)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

W, H = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 40, 52


def _accuracy(point: Any) -> tuple[float, float]:
    """(pool size, accuracy) from (n, report) or (n, accuracy)."""
    n, value = point
    return float(n), float(getattr(value, "accuracy", value))


def _round_steps(smallest: float) -> list[float]:
    """1, 2, 5, 10, 20, 50, ... times ``smallest``: the steps a reader counts in."""
    return [smallest * m * 10 ** e for e in range(12) for m in (1, 2, 5)]


def _x_ticks(sizes: Sequence[float], most: int = 9) -> list[float]:
    """Ticks on the swept pool sizes, at round numbers: the smallest round step (1, 2, 5, 10, 20, ...)
    whose multiples among the sizes are at most ``most``. Sizes that share no round step (e.g. 7, 13)
    get the first and last size."""
    whole = sorted({int(round(x)) for x in sizes})
    for step in _round_steps(1):
        on = [x for x in whole if x % int(step) == 0]
        if len(on) <= most:
            return [float(x) for x in on] if len(on) >= 2 or len(whole) == 1 else \
                [float(whole[0]), float(whole[-1])]
    return [float(whole[0]), float(whole[-1])]


def _y_ticks(lo: float, hi: float, most: int = 7) -> tuple[list[float], int]:
    """Round accuracy ticks inside [lo, hi] (multiples of 0.1%, 0.2%, 0.5%, 1%, 2%, 5%, 10%, ...), and
    the decimals their percentages need."""
    for step in _round_steps(0.001):
        first = math.ceil(lo / step - 1e-9)
        ticks = [round(k * step, 6) for k in range(first, math.floor(hi / step + 1e-9) + 1)]
        if len(ticks) <= most:
            return ticks, (1 if step < 0.00999 else 0)
    return [lo, hi], 1


def chart_svg(points: Sequence[Any], path: str | Path | None = None, target: float | None = None,
              title: str = "Attribution accuracy by pool size") -> str:
    """Write (and return) an SVG line chart of accuracy vs pool size.

    ``points`` are (pool size, SimulationReport) pairs as ``sweep`` returns, or
    (pool size, accuracy). ``target`` draws a dashed horizontal line. Each point is a
    ``<circle class="point">`` carrying ``data-numbers`` and ``data-accuracy``.
    """
    data = sorted(_accuracy(p) for p in points)
    if not data:
        raise ValueError("points: expected at least one (pool size, accuracy) pair")
    xs = [x for x, _ in data]
    ys = [y for _, y in data] + ([target] if target is not None else [])
    x0, x1 = min(xs), max(xs)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    y0 = max(0.0, min(ys) - 0.02)
    y1 = min(1.0, max(ys) + 0.02)
    if y1 <= y0:
        y0, y1 = max(0.0, y0 - 0.05), min(1.0, y1 + 0.05) if y1 < 1 else 1.0
        if y1 <= y0:
            y0 = y1 - 0.1

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def py(y: float) -> float:
        return TOP + (y1 - y) / (y1 - y0) * (H - TOP - BOTTOM)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="sans-serif" font-size="12">',
           f"<title>{escape(title)}</title>",
           f'<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2:.1f}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>']
    y_ticks, decimals = _y_ticks(y0, y1)
    for y in y_ticks:
        out.append(f'<line x1="{LEFT}" y1="{py(y):.1f}" x2="{W - RIGHT}" y2="{py(y):.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text class="y-tick" data-value="{y:g}" x="{LEFT - 6}" y="{py(y) + 4:.1f}" '
                   f'text-anchor="end">{y:.{decimals}%}</text>')
    for x in _x_ticks(xs):
        out.append(f'<line x1="{px(x):.1f}" y1="{H - BOTTOM}" x2="{px(x):.1f}" y2="{H - BOTTOM + 5}" stroke="black"/>')
        out.append(f'<text class="x-tick" data-value="{x:.0f}" x="{px(x):.1f}" y="{H - BOTTOM + 18}" '
                   f'text-anchor="middle">{x:.0f}</text>')
    out.append(f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="black"/>')
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="black"/>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2:.1f}" y="{H - 12}" text-anchor="middle">numbers in the pool</text>')
    out.append(f'<text x="16" y="{(TOP + H - BOTTOM) / 2:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(TOP + H - BOTTOM) / 2:.1f})">accuracy</text>')
    if target is not None:
        out.append(f'<line class="target" x1="{LEFT}" y1="{py(target):.1f}" x2="{W - RIGHT}" y2="{py(target):.1f}" '
                   f'stroke="#c0392b" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{W - RIGHT - 4}" y="{py(target) - 6:.1f}" text-anchor="end" fill="#c0392b">'
                   f'target {target:.0%}</text>')
    line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in data)
    out.append(f'<polyline points="{line}" fill="none" stroke="#2c6fbb" stroke-width="2"/>')
    for x, y in data:
        out.append(f'<circle class="point" cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="#2c6fbb" '
                   f'data-numbers="{x:.0f}" data-accuracy="{y:.4f}"><title>{x:.0f} numbers: {y:.2%}</title></circle>')
    out.append("</svg>")
    text = "\n".join(out) + "\n"
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
