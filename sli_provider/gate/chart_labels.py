"""Where a chart's target labels go: beside their lines, clear of each other and of the value
line (pure geometry, in the chart's pixels)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

BOLD_CHAR_W = 6.6  # average width of a bold 11 px system-ui character


@dataclass(frozen=True)
class Box:
    """A rectangle in the chart's pixels, for keeping labels clear of each other and the line."""

    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box) -> bool:
        return (
            self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1
        )

    def inside(self, frame: Box) -> bool:
        return (
            frame.x0 <= self.x0
            and self.x1 <= frame.x1
            and frame.y0 <= self.y0
            and self.y1 <= frame.y1
        )


@dataclass(frozen=True)
class Label:
    """A target's name on the chart, its text starting at (x, y) (the baseline)."""

    x: float
    y: float
    text: str
    colour: str


def label_box(x: float, y: float, text: str) -> Box:
    return Box(x - 1, y - 10, x + len(text) * BOLD_CHAR_W + 1, y + 3)


def line_boxes(polylines: list[str]) -> list[Box]:
    """Small boxes along each line (every few pixels), so a label can keep off it."""
    boxes = []
    for joined in polylines:
        xy = [tuple(map(float, pair.split(","))) for pair in joined.split()]
        for (x0, y0), (x1, y1) in itertools.pairwise(xy):
            steps = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / 3))
            for k in range(steps + 1):
                x, y = x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps
                boxes.append(Box(x - 2, y - 2, x + 2, y + 2))
    return boxes


# (for a relative target: its runs' short lines (x from, x to, y), the last run's first;
# None for a flat line across the chart), y, text, colour
Wanted = tuple[list[tuple[float, float, float]] | None, float, str, str]


def place_labels(wanted: list[Wanted], frame: Box, obstacles: list[Box]) -> list[Label]:
    """Each label beside its line, where it covers no other label, point or value line.

    Candidates are tried nearest first: beside the line, above it, below it, then farther up
    and down; the first that covers nothing wins, else the one covering least. A relative
    target's label names the last run's target beside that run's line; where that is covered
    it stands beside an earlier run's line, without a number (that run's is in its tooltip).
    """
    placed: list[Label] = []
    taken: list[Box] = []
    for spans, y, text, colour in sorted(wanted, key=lambda item: item[1]):
        spots: list[tuple[float, float, str]] = []
        if spans is None:  # a flat line across the chart: above or below it, left first
            width = len(text) * BOLD_CHAR_W
            xs = [frame.x0 + 4, frame.x1 - 4 - width, (frame.x0 + frame.x1 - width) / 2]
        else:
            short = text.rsplit(" → ", 1)[0] + " (per run)"
            for n, (x0, x1, tick_y) in enumerate(spans):
                shown = text if n == 0 else short
                width = len(shown) * BOLD_CHAR_W
                spots += [(x0 - 4 - width, tick_y + 4, shown), (x1 + 4, tick_y + 4, shown)]
                spots += [(x, tick_y + dy, shown) for dy in (-5, 14) for x in (x1 - width, x0)]
            width = len(text) * BOLD_CHAR_W
            xs = [spans[0][1] - width, spans[0][0]]
        near = [(x, y + dy, text) for dy in (-5, 14) for x in xs]
        spots = near + spots if spans is None else spots + near
        spots += [
            (x, y + dy, text) for k in range(1, 6) for dy in (-5 - 13 * k, 14 + 13 * k) for x in xs
        ]

        def cost(spot: tuple[float, float, str]) -> int:
            box = label_box(*spot)
            if not box.inside(frame):
                return 10_000
            return sum(box.overlaps(o) for o in obstacles) + 100 * sum(
                box.overlaps(t) for t in taken
            )

        x, y_text, shown = min(spots, key=cost)  # min keeps the first of equal cost
        taken.append(label_box(x, y_text, shown))
        placed.append(Label(x, y_text, shown, colour))
    return placed
