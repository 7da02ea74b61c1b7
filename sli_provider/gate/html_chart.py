"""The history chart of one SLI: inline SVG drawn here, no scripts (pure).

Split from html_report.py, which lays out the page; both share the formatting helpers below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

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
_WHITE_RING = 'stroke="#fff" stroke-width="1.5"'
_CHAR_W = 6.2  # average width of an 11 px system-ui character, for laying out x labels


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


def chart_svg(index: int, result: ScoredIndicator, runs: list[Run]) -> str:
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
    bottom, plot_h = _H - _BOTTOM, _H - _BOTTOM - _TOP

    def y_of(v: float) -> float:
        v = min(max(v, low), high)
        return bottom - (v - low) / (high - low) * plot_h

    def x_of(i: int) -> float:
        if len(runs) == 1:
            return (_LEFT + _W - _RIGHT) / 2
        return _LEFT + _INSET + (_W - _RIGHT - _LEFT - 2 * _INSET) * i / (len(runs) - 1)

    svg = [
        f'<svg class="chart" id="chart-{index}" data-sli="{escape_html(metric)}" width="{_W}" '
        f'height="{_H}" viewBox="0 0 {_W} {_H}" role="img" aria-label="history of '
        f'{escape_html(metric)}">'
    ]
    for tick in ticks:  # grid and y labels
        y = round(y_of(tick)) + 0.5
        svg.append(
            f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y}" y2="{y}" stroke="#eaeef2" '
            f'shape-rendering="crispEdges"/><text x="{_LEFT - 6}" y="{y + 4}" '
            f'text-anchor="end" fill="#57606a">{format_number(tick)}</text>'
        )
    # x labels: as many as fit side by side (by their estimated width), always the last
    widest = max(len(run.label) for run in runs) * _CHAR_W + 10
    spacing = (x_of(1) - x_of(0)) if len(runs) > 1 else float(_W)
    step = max(1, math.ceil(widest / spacing))
    shown = [i for i in range(0, len(runs), step) if len(runs) - 1 - i >= step]
    for i in [*shown, len(runs) - 1]:
        bold = ' font-weight="700"' if runs[i].current else ""
        half = len(runs[i].label) * _CHAR_W / 2 + 2
        svg.append(
            f'<text class="x-label" x="{min(max(x_of(i), half), _W - half):.1f}" y="{_H - 12}" '
            f'text-anchor="middle" fill="#57606a"{bold}>{escape_html(runs[i].label)}</text>'
        )
    svg.append(
        f'<path d="M{_LEFT - 0.5} {_TOP}V{bottom + 0.5}H{_W - _RIGHT}" fill="none" '
        'stroke="#8c959f" shape-rendering="crispEdges"/>'
    )
    labels: list[tuple[float, str, str]] = []
    for target, kind, colour in near:
        y = round(y_of(target.target_value))
        svg.append(
            f'<line class="target target-{kind}" x1="{_LEFT}" x2="{_W - _RIGHT}" '
            f'y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2" '
            f'stroke-dasharray="8 5" shape-rendering="crispEdges"><title>{kind} target '
            f"{escape_html(target.criteria)} → {format_number(target.target_value)}</title></line>"
        )
        labels.append(
            (y, f"{kind} {target.criteria} → {format_number(target.target_value)}", colour)
        )
    for target, kind, colour in far:  # off the scale: a note at the edge, not a squashed axis
        above = target.target_value > high
        y = _TOP + 11 if above else bottom - 4
        text = f"{'▲' if above else '▼'} {kind} {target.criteria} → {format_number(target.target_value)}"
        svg.append(
            f'<text class="target-off target-{kind}" x="{_W - _RIGHT - 4}" y="{y}" '
            f'text-anchor="end" fill="{colour}" stroke="#fff" stroke-width="3" '
            f'paint-order="stroke" font-weight="600">{escape_html(text)}</text>'
        )
    half_tick = min(12.0, spacing * 0.35)
    for (kind, criteria), series in relative.items():
        colour = TARGET_COLOURS[kind]
        if len(series) > 1:
            joined = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in series)
            svg.append(
                f'<polyline class="target-relative target-{kind}" points="{joined}" fill="none" '
                f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="2 3"/>'
            )
        for i, v in series:
            y = round(y_of(v))
            svg.append(
                f'<line class="target-relative-run target-{kind}" x1="{x_of(i) - half_tick:.1f}" '
                f'x2="{x_of(i) + half_tick:.1f}" y1="{y}" y2="{y}" stroke="{colour}" '
                f'stroke-width="3"><title>{escape_html(runs[i].when or runs[i].label)}: {kind} '
                f"target {escape_html(criteria)} → {format_number(v)}</title></line>"
            )
        _, last_v = series[-1]
        labels.append((round(y_of(last_v)), f"{kind} {criteria} → {format_number(last_v)}", colour))
    placed: list[float] = []
    for y, text, colour in sorted(labels):  # above the line, else below, else stacked up
        clear = [
            b
            for b in (y - 5, y + 14, *(y - 5 - 13 * k for k in range(1, len(labels) + 1)))
            if _TOP + 9 <= b <= bottom - 3
            and all(abs(b - p) >= 13 for p in placed)
            and not any(b - 10 <= other <= b + 2 for other, _, _ in labels if other != y)
        ]
        placed.append(clear[0] if clear else max(y - 5, placed[-1] + 13 if placed else 0))
        svg.append(
            f'<text x="{_LEFT + 6}" y="{placed[-1]}" fill="{colour}" stroke="#fff" '
            f'stroke-width="3" paint-order="stroke" font-weight="600">{escape_html(text)}</text>'
        )
    segment: list[str] = []
    for i, value in [*points, (len(runs), None)]:  # polylines broken where a run lacks a value
        if value is not None and math.isfinite(value):
            segment.append(f"{x_of(i):.1f},{y_of(value):.1f}")
            continue
        if len(segment) > 1:
            svg.append(
                f'<polyline class="series" points="{" ".join(segment)}" fill="none" '
                f'stroke="{SERIES_COLOUR}" stroke-width="2.5" stroke-linejoin="round"/>'
            )
        segment = []
        if i < len(runs):
            svg.append(
                f'<circle class="missing" cx="{x_of(i):.1f}" cy="{bottom - 6}" r="3" '
                f'fill="none" stroke="#8c959f"><title>{escape_html(runs[i].label)}: no value'
                "</title></circle>"
            )
    for i, value in points:
        if value is None or not math.isfinite(value):
            continue
        run = runs[i]
        status = run.status_of(metric)
        colour = RESULT_COLOURS.get(status, OTHER_COLOUR)
        ring = f'stroke="{SERIES_COLOUR}" stroke-width="2.5"' if run.current else _WHITE_RING
        note = " (invalidated)" if run.invalidated else ""
        faded = ' opacity="0.45"' if run.invalidated else ""
        svg.append(
            f'<circle class="series{" current" if run.current else ""}" '
            f'cx="{x_of(i):.1f}" cy="{y_of(value):.1f}" r="{7 if run.current else 5}" '
            f'fill="{colour}" {ring} data-value="{value!r}" data-status="{escape_html(status)}"'
            f"{faded}><title>{escape_html(run.when or run.label)}: {format_number(value)} "
            f"(this SLI: {escape_html(status)}; run: {escape_html(run.result)}){note}</title></circle>"
        )
    svg.append("</svg>")
    current = number_html(result.value.value) if result.value.success else "no value"
    name = result.display_name or metric
    sub = f" <code>{escape_html(metric)}</code>" if name != metric else ""
    legend = [f'<span><i class="ln" style="border-color:{SERIES_COLOUR}"></i>value per run</span>']
    legend += [
        f'<span><i class="dot" style="background:{RESULT_COLOURS[r]}"></i>SLI {r}</span>'
        for r in ("pass", "warning", "fail")
    ]
    for kind, colour in TARGET_COLOURS.items():
        if any(k == kind for _, k, _ in lines):
            legend.append(
                f'<span><i class="ln dash" style="border-color:{colour}"></i>{kind} target</span>'
            )
        if any(k == kind for k, _ in relative):
            legend.append(
                f'<span><i class="ln" style="border-color:{colour}"></i>{kind} target '
                "of each run (relative)</span>"
            )
    return (
        f'<figure class="chart-card" data-sli="{escape_html(metric)}"><figcaption><strong>'
        f'{escape_html(name)}</strong>{sub} <span class="sub">· now {current} · '
        f"{len(values)}/{len(runs)} runs with a value</span></figcaption>"
        f'{"".join(svg)}<div class="legend">{"".join(legend)}</div></figure>'
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


def number_html(value: float) -> str:
    return f'<span title="{value!r}">{escape_html(format_number(value))}</span>'


def escape_html(text: object) -> str:
    return escape(str(text), quote=True)
