"""Bar charts drawn on the server as SVG: the geometry here (pure, no words), the words and the markup in
templates/_charts.html, which the reader's catalog translates. No script runs to draw them."""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 360, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 28  # room for the value axis on the left, the months below
MAX_LABELS = 5  # month labels under the bars that fit side by side


@dataclass(frozen=True)
class Bar:
    label: str  # the month, YYYY-MM
    tick_label: str  # the label under the bar: every few bars only, so that a year's labels do not overlap
    value: float | None  # None: nothing to show (no referral to take a median of), drawn as no bar
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    value: float
    y: float


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM


def nice_top(largest: float) -> float:
    """A round axis maximum at or above ``largest`` (1, 2, 5 times a power of ten)."""
    if largest <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(largest))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= largest)


def bars(points: list[tuple[str, float | None]], *, counts: bool = False) -> Chart:
    """One bar per point, left to right, scaled to a round maximum, with six ticks (fifths) on the value axis;
    for ``counts``, whole numbers only (an axis up to 2 is ticked 0, 1, 2, not in fifths)."""
    top = nice_top(max((v for _, v in points if v is not None), default=0.0))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(1, len(points))
    every = math.ceil(len(points) / MAX_LABELS) or 1
    shown = []
    for i, (label, value) in enumerate(points):
        height = 0.0 if value is None else plot_height * value / top
        x, y = round(LEFT + i * slot + slot * 0.15, 1), round(TOP + plot_height - height, 1)
        shown.append(Bar(label, label if i % every == 0 else "", value, x, y, round(slot * 0.7, 1), round(height, 1)))
    steps = int(top) if counts and top < 5 else 5
    ticks = [Tick(round(top * k / steps, 2), round(TOP + plot_height * (1 - k / steps), 1)) for k in range(steps + 1)]
    return Chart(shown, ticks)
