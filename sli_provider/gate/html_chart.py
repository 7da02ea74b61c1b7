"""The history chart of one SLI, laid out (pure): where every line, point and label goes.

The report's template draws it (templates/chart.html.j2); html_report.py lays out the page.
Both share the formatting helpers below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sli_provider.gate.chart_labels import Box, Label, Wanted, line_boxes, place_labels
from sli_provider.gate.criteria import CriteriaError, parse_criteria
from sli_provider.gate.results import ScoredIndicator, Target

SERIES_COLOUR = "#1f6feb"
TARGET_COLOURS = {"pass": "#2da44e", "warning": "#d4a72c"}  # dashed target lines
RESULT_COLOURS = {"pass": "#1a7f37", "warning": "#9a6700", "fail": "#cf222e"}
ERRORED_COLOUR = "#6e7781"
OTHER_COLOUR = "#8c959f"  # a run whose result is none of the above
MAX_RUNS = 60  # chart at most this many runs (the newest)

# Chart geometry, in CSS pixels (the SVG is never scaled, so 2 px lines stay crisp).
_W, _H = 560, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 14, 14, 34
_INSET = 14  # horizontal gap between the axes and the first/last point
_CHAR_W = 6.2  # average width of an 11 px system-ui character, for laying out x labels
_LINE_H = 14  # one line of 11 px text


def format_number(value: float) -> str:
    """At most 4 significant digits; scientific notation outside [0.001, 10000)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.4g}"
    mantissa, _, exponent = f"{value:.3e}".partition("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


@dataclass(frozen=True)
class RunTarget:
    """A relative target as that run computed it (it moves with the runs compared with)."""

    kind: str  # pass | warning
    criteria: str
    value: float


@dataclass(frozen=True)
class Run:
    label: str  # x-axis label
    result: str
    values: dict[str, float]
    current: bool = False
    invalidated: bool = False
    statuses: dict[str, str] = field(default_factory=dict)  # metric → its status in this run
    relative_targets: dict[str, tuple[RunTarget, ...]] = field(default_factory=dict)
    when: str = ""  # the full time, for tooltips

    def status_of(self, metric: str) -> str:
        return self.statuses.get(metric, self.result)


@dataclass(frozen=True)
class TargetLine:
    kind: str
    y: float
    colour: str
    title: str


@dataclass(frozen=True)
class OffChartNote:
    """A fixed target too far from the values to share their axis, named above the plot."""

    kind: str
    y: float
    text: str
    colour: str


@dataclass(frozen=True)
class RelativeTick:
    kind: str
    x1: float
    x2: float
    y: float
    colour: str
    title: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    radius: int
    colour: str
    value: float
    status: str
    current: bool
    invalidated: bool
    title: str


@dataclass(frozen=True)
class Chart:
    """One SLI's history chart, laid out: every position computed, nothing drawn yet.

    The markup is the report template's (templates/chart.html.j2); this is the geometry.
    """

    index: int
    metric: str
    name: str
    current: str  # the value now, formatted
    with_value: int
    runs: int
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    grid: list[tuple[float, str]]  # (y, tick text)
    x_labels: list[tuple[float, str, bool]]  # (x, text, bold)
    target_lines: list[TargetLine]
    off_chart: list[OffChartNote]
    relative_lines: list[tuple[str, str, str]]  # (kind, colour, points)
    relative_ticks: list[RelativeTick]
    labels: list[Label]
    series: list[str]  # polyline points, one per unbroken stretch
    missing: list[tuple[float, float, str]]  # (x, y, title): runs without a value
    points: list[Point]
    legend: list[tuple[str, str, str]]  # (swatch: ln | ln dash | dot, colour, text)


def layout_chart(index: int, result: ScoredIndicator, runs: list[Run]) -> Chart:
    metric = result.value.metric
    points = [(i, run.values.get(metric)) for i, run in enumerate(runs)]
    values = [v for _, v in points if v is not None and math.isfinite(v)]
    # Fixed targets are flat lines; relative ones move with the runs compared with, so they
    # are drawn per run (from each run's own evaluation), never as one flat line.
    lines = [(t, "pass", TARGET_COLOURS["pass"]) for t in result.pass_targets or ()]
    lines += [(t, "warning", TARGET_COLOURS["warning"]) for t in result.warning_targets or ()]
    lines = [(fixed, k, c) for t, k, c in lines if (fixed := fixed_target(t)) is not None]
    lines = [line for line in lines if math.isfinite(line[0].target_value)]
    relative = _relative_series(metric, runs)
    moving = [v for series in relative.values() for _, v in series]
    near, far = _split_targets(values + moving, lines)
    low, high, ticks = axis_scale(values + moving + [t.target_value for t, _, _ in near])
    # Targets off the scale are named in a band above the plot, one line each: never on top
    # of each other, of the values or of the line.
    top = _TOP + _LINE_H * len(far)
    height = _H + _LINE_H * len(far)
    bottom, plot_h = height - _BOTTOM, height - _BOTTOM - top

    def y_of(v: float) -> float:
        v = min(max(v, low), high)
        return bottom - (v - low) / (high - low) * plot_h

    def x_of(i: int) -> float:
        if len(runs) == 1:
            return (_LEFT + _W - _RIGHT) / 2
        return _LEFT + _INSET + (_W - _RIGHT - _LEFT - 2 * _INSET) * i / (len(runs) - 1)

    grid = [(round(y_of(tick)) + 0.5, format_number(tick)) for tick in ticks]
    # x labels: as many as fit side by side (by their estimated width), always the last
    widest = max(len(run.label) for run in runs) * _CHAR_W + 10
    spacing = (x_of(1) - x_of(0)) if len(runs) > 1 else float(_W)
    step = max(1, math.ceil(widest / spacing))
    shown = [i for i in range(0, len(runs), step) if len(runs) - 1 - i >= step]
    x_labels = []
    for i in [*shown, len(runs) - 1]:
        half = len(runs[i].label) * _CHAR_W / 2 + 2
        x_labels.append((min(max(x_of(i), half), _W - half), runs[i].label, runs[i].current))
    off_chart = [
        OffChartNote(
            kind,
            _TOP - 3 + _LINE_H * (k + 1),
            f"{'▲' if t.target_value > high else '▼'} {kind} {t.criteria} → "
            f"{format_number(t.target_value)}",
            colour,
        )
        for k, (t, kind, colour) in enumerate(far)
    ]
    target_lines: list[TargetLine] = []
    wanted: list[Wanted] = []
    for target, kind, colour in near:
        y = round(y_of(target.target_value))
        name = f"{kind} {target.criteria} → {format_number(target.target_value)}"
        target_lines.append(TargetLine(kind, y, colour, f"{kind} target {name[len(kind) + 1 :]}"))
        wanted.append((None, y, name, colour))
    half_tick = min(12.0, spacing * 0.35)
    relative_lines: list[tuple[str, str, str]] = []
    relative_ticks: list[RelativeTick] = []
    for (kind, criteria), series in relative.items():
        colour = TARGET_COLOURS[kind]
        if len(series) > 1:
            joined = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in series)
            relative_lines.append((kind, colour, joined))
        for i, v in series:
            relative_ticks.append(
                RelativeTick(
                    kind,
                    x_of(i) - half_tick,
                    x_of(i) + half_tick,
                    round(y_of(v)),
                    colour,
                    f"{runs[i].when or runs[i].label}: {kind} target {criteria} → "
                    f"{format_number(v)}",
                )
            )
        last_v = series[-1][1]
        spans = [
            (x_of(i) - half_tick, x_of(i) + half_tick, float(round(y_of(v)))) for i, v in series
        ]
        wanted.append(
            (
                spans[::-1],
                round(y_of(last_v)),
                f"{kind} {criteria} → {format_number(last_v)}",
                colour,
            )
        )
    series_lines: list[str] = []
    missing: list[tuple[float, float, str]] = []
    segment: list[tuple[float, float]] = []
    for i, value in [*points, (len(runs), None)]:  # polylines broken where a run lacks a value
        if value is not None and math.isfinite(value):
            segment.append((x_of(i), y_of(value)))
            continue
        if len(segment) > 1:
            series_lines.append(" ".join(f"{x:.1f},{y:.1f}" for x, y in segment))
        segment = []
        if i < len(runs):
            missing.append((x_of(i), bottom - 6, f"{runs[i].label}: no value"))
    chart_points = []
    for i, value in points:
        if value is None or not math.isfinite(value):
            continue
        run = runs[i]
        status = run.status_of(metric)
        note = " (invalidated)" if run.invalidated else ""
        chart_points.append(
            Point(
                x_of(i),
                y_of(value),
                7 if run.current else 5,
                RESULT_COLOURS.get(status, OTHER_COLOUR),
                value,
                status,
                run.current,
                run.invalidated,
                f"{run.when or run.label}: {format_number(value)} "
                f"(this SLI: {status}; run: {run.result}){note}",
            )
        )
    frame = Box(_LEFT + 2, top, _W - _RIGHT - 2, bottom - 2)
    obstacles = line_boxes(series_lines) + [
        Box(p.x - p.radius - 1, p.y - p.radius - 1, p.x + p.radius + 1, p.y + p.radius + 1)
        for p in chart_points
    ]
    labels = place_labels(wanted, frame, obstacles)
    name = result.display_name or metric
    legend = [("ln", SERIES_COLOUR, "value per run")]
    legend += [("dot", RESULT_COLOURS[r], f"SLI {r}") for r in ("pass", "warning", "fail")]
    for kind, colour in TARGET_COLOURS.items():
        if any(k == kind for _, k, _ in near):  # the far ones are named, not drawn
            legend.append(("ln dash", colour, f"{kind} target"))
        if any(k == kind for k, _ in relative):
            legend.append(("ln", colour, f"{kind} target of each run (relative)"))
    return Chart(
        index=index,
        metric=metric,
        name=name,
        current=format_number(result.value.value) if result.value.success else "no value",
        with_value=len(values),
        runs=len(runs),
        width=_W,
        height=height,
        left=_LEFT,
        right=_W - _RIGHT,
        top=top,
        bottom=bottom,
        grid=grid,
        x_labels=x_labels,
        target_lines=target_lines,
        off_chart=off_chart,
        relative_lines=relative_lines,
        relative_ticks=relative_ticks,
        labels=labels,
        series=series_lines,
        missing=missing,
        points=chart_points,
        legend=legend,
    )


def _relative_series(
    metric: str, runs: list[Run]
) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(kind, criteria) → [(run index, that run's target)] for the runs that computed one."""
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for i, run in enumerate(runs):
        for target in run.relative_targets.get(metric, ()):
            if math.isfinite(target.value):
                series.setdefault((target.kind, target.criteria), []).append((i, target.value))
    return series


_Line = tuple[Target, str, str]


def _split_targets(values: list[float], lines: list[_Line]) -> tuple[list[_Line], list[_Line]]:
    """Fixed targets near enough to the values to share their axis, and the rest.

    A target ten times above every value would squash the values into a flat line at the
    bottom; it is named at the chart's edge instead. Without values every target is drawn.
    """
    if not values:
        return lines, []
    low, high = min(values), max(values)
    reach = max(high - low, abs(high) * 0.5, abs(low) * 0.5) or 1.0
    near = [line for line in lines if low - reach <= line[0].target_value <= high + reach]
    return near, [line for line in lines if line not in near]


def axis_scale(values: list[float]) -> tuple[float, float, list[float]]:
    """An axis range with round ticks (about 5 steps) covering every value."""
    # clamped so that the span stays finite; only values near the float limit are affected
    low, high = (max(-1e307, min(1e307, f(values, default=0.0))) for f in (min, max))
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    pad = (high - low) * 0.04  # keep points and lines off the frame, but not below a 0 floor
    low, high = (low - pad if low - pad >= 0 or low < 0 else 0.0), high + pad
    raw = (high - low) / 5
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return first * step, last * step, [k * step for k in range(first, last + 1)]


def fixed_target(target: Target) -> Target | None:
    """A fixed criterion's own number (``<600`` → 600); None for relative or bad criteria."""
    try:
        criterion = parse_criteria(target.criteria)
    except CriteriaError:
        return None
    fixed = Target(target.criteria, criterion.value, target.violated)
    return None if criterion.is_comparison else fixed


def format_time(unix: float, *, seconds: bool = False) -> str:
    try:
        moment = datetime.fromtimestamp(unix, UTC)
    except (OverflowError, OSError, ValueError):
        return format_number(unix)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%m-%d %H:%M")


def time_labels(times: list[float | None]) -> list[str]:
    """x-axis labels as short as they can be while distinct runs keep distinct labels.

    The date is left out when every run is on one day; seconds are added when two runs fall
    in one minute. ``None`` (a run without a time) is labelled "current".
    """
    known = [t for t in times if t is not None]
    try:
        days = {datetime.fromtimestamp(t, UTC).date() for t in known}
    except (OverflowError, OSError, ValueError):
        return [format_number(t) if t is not None else "current" for t in times]
    formats = (
        ["%H:%M", "%H:%M:%S"] if len(days) <= 1 else ["%m-%d", "%m-%d %H:%M", "%m-%d %H:%M:%S"]
    )
    distinct = len({int(t) for t in known})
    for pattern in formats:
        labels = [datetime.fromtimestamp(t, UTC).strftime(pattern) for t in known]
        if len(set(labels)) >= distinct:
            break
    found = iter(labels)
    return [next(found) if t is not None else "current" for t in times]
