"""A self-contained HTML report of one evaluation and the stored runs before it (pure).

The page has inline CSS and inline SVG charts drawn here; it has no scripts and fetches
nothing (a Content-Security-Policy forbids it). Every user-supplied string (SLI names,
display names, criteria, messages) goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from sli_provider.gate.criteria import CriteriaError, parse_criteria
from sli_provider.gate.records import StoredEvaluation
from sli_provider.gate.results import Evaluation, IndicatorResult, Target
from sli_provider.gate.slo import SLOParseError, parse_slo

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

_CSS = """
*{box-sizing:border-box}main{max-width:1200px;margin:0 auto}.sli{display:block;color:#57606a}
body{margin:0;padding:24px;background:#f6f8fa;color:#1f2328;font:14px/1.45 system-ui,sans-serif}
h1{font-size:15px;color:#57606a;margin:0 0 10px}h2{font-size:17px;margin:28px 0 10px}
code{font:12px/1.4 "DejaVu Sans Mono",ui-monospace,monospace}
.verdict{color:#fff;border-radius:8px;padding:18px 24px;display:flex;flex-wrap:wrap;gap:6px 24px}
.verdict .word{font-size:34px;font-weight:800}.verdict .score{font-size:26px;font-weight:600}
.verdict .message{flex-basis:100%;margin:0;font-size:15px}.scope dt{font-size:12px;color:#57606a}
.scope{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:8px 20px;
margin:14px 0 0;padding:14px 18px;background:#fff;border:1px solid #d0d7de;border-radius:8px}
.scope dd{margin:0;font-weight:600;word-break:break-all}.targets li{white-space:nowrap}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #d0d7de}
th,td{padding:8px 10px;border-bottom:1px solid #d8dee4;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-size:12px;color:#57606a}.targets{list-style:none;margin:0;padding:0}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.objective td:first-child{border-left:4px solid #8c959f}
tr[data-status=pass] td:first-child{border-left-color:#1a7f37}
tr[data-status=warning] td:first-child{border-left-color:#9a6700}
tr[data-status=fail] td:first-child{border-left-color:#cf222e}
.target.violated{color:#cf222e;font-weight:600}.target.met{color:#1a7f37}
.badge{font-size:11px;font-weight:700;padding:0 6px;border-radius:9px;margin-left:6px;
background:#ddf4ff;color:#0969da;border:1px solid #54aeff}.empty{color:#57606a}
.status{font-weight:700;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff;
text-transform:uppercase;background:#8c959f}.status-info{background:#57606a}
.status-pass{background:#1a7f37}.status-warning{background:#9a6700}.status-fail{background:#cf222e}
.indicator-message{margin-top:4px;font-size:12px;color:#cf222e;white-space:normal}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(586px,1fr));gap:16px}
figure{margin:0;padding:12px;background:#fff;border:1px solid #d0d7de;border-radius:8px}
figcaption{margin-bottom:6px}figcaption .sub{color:#57606a;font-size:12px}
svg.chart{display:block;font:11px system-ui,sans-serif}footer{margin-top:28px;color:#57606a}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:#57606a;margin-top:4px}
.legend i{display:inline-block;vertical-align:middle;margin-right:5px}
.legend .ln{width:18px;height:0;border-top:3px solid}.legend .dash{border-top-style:dashed}
.legend .dot{width:10px;height:10px;border-radius:50%}
"""


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


def render_html(
    evaluation: Evaluation,
    history: Sequence[StoredEvaluation],
    *,
    project: str,
    stage: str,
    service: str,
    generated_at: float | None = None,
) -> str:
    """The report page. ``history`` is newest first and may start with this evaluation."""
    verdict = "errored" if evaluation.errored else evaluation.result
    results = evaluation.details.indicator_results or ()
    runs = _runs(evaluation, history)
    title = f"Quality gate {verdict.upper()}: {project}/{stage}/{service}"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>Quality gate · {_e(project)} / {_e(stage)} / {_e(service)}</h1>",
        _banner(evaluation, verdict),
        _scope(evaluation, (project, stage, service), len(history), generated_at),
        '<h2>Objectives</h2><table id="objectives"><thead><tr><th>Objective</th>'
        "<th>Value</th><th>Compared</th><th>Pass targets</th><th>Warning targets</th>"
        "<th>Status</th><th>Score / weight</th></tr></thead><tbody>",
    ]
    weights = _weights(evaluation, len(results))
    parts += [_row(result, weights[i]) for i, result in enumerate(results)]
    if not results:
        parts.append('<tr><td colspan="7" class="empty">No objectives were scored.</td></tr>')
    parts.append("</tbody></table>")
    if results:
        shown = f"the latest {MAX_RUNS} of " if len(runs) > MAX_RUNS else ""
        parts.append(
            f"<h2>History</h2><p>Each SLI across {shown}{len(runs)} run(s), oldest "
            'left; the last point is this evaluation.</p><div class="charts">'
        )
        seen: set[str] = set()
        for index, result in enumerate(results):
            if result.value.metric not in seen:  # one chart per SLI, the first objective's
                seen.add(result.value.metric)
                parts.append(_chart(index, result, runs[-MAX_RUNS:]))
        parts.append("</div>")
    parts.append(
        "<footer>Scored like Keptn's lighthouse-service; generated by sli-provider."
        "</footer></main></body></html>"
    )
    return "\n".join(parts)


@dataclass(frozen=True)
class _Run:
    label: str  # x-axis label
    result: str
    values: dict[str, float]
    current: bool = False
    invalidated: bool = False


def _runs(evaluation: Evaluation, history: Sequence[StoredEvaluation]) -> list[_Run]:
    """Oldest first; the current evaluation last (added when the history lacks it)."""
    current_values = {
        r.value.metric: r.value.value
        for r in reversed(evaluation.details.indicator_results or ())
        if r.value.success
    }
    stored = bool(history) and _is_current(history[0], evaluation, current_values)
    runs = [
        _Run(_time(item.time), item.result, item.values(), index == 0 and stored, item.invalidated)
        for index, item in enumerate(history)
    ][::-1]
    if not stored:
        runs.append(_Run("current", evaluation.result, current_values, current=True))
    return runs


def _is_current(item: StoredEvaluation, evaluation: Evaluation, values: dict[str, float]) -> bool:
    stored = item.data.get("evaluation")
    if not isinstance(stored, Mapping):
        return False
    details = evaluation.details
    return (
        stored.get("timeStart") == details.time_start
        and stored.get("timeEnd") == details.time_end
        and stored.get("score") == details.score
        and item.data.get("result") == evaluation.result
        and item.values() == values
    )


def _banner(evaluation: Evaluation, verdict: str) -> str:
    colour = ERRORED_COLOUR if evaluation.errored else RESULT_COLOURS.get(verdict, OTHER_COLOUR)
    score = format_number(evaluation.details.score)
    message = evaluation.message or f"Evaluation result: {verdict}."
    return (
        f'<header id="verdict" class="verdict verdict-{_e(verdict)}" data-result="{_e(verdict)}" '
        f'style="background:{colour}"><span class="word">{_e(verdict.upper())}</span>'
        f'<span class="score" id="score">score {_e(score)}%</span>'
        f'<p class="message" id="message">{_e(message)}</p></header>'
    )


def _scope(
    evaluation: Evaluation, scope: tuple[str, str, str], stored: int, at: float | None
) -> str:
    project, stage, service = scope
    details = evaluation.details
    items = [("Project", project), ("Stage", stage), ("Service", service)]
    items += [("Window start", details.time_start or "—"), ("Window end", details.time_end or "—")]
    duration = _duration(details.time_start, details.time_end)
    items += [("Window length", duration)] if duration else []
    items += [("Status / evaluation result", f"{evaluation.status} / {details.result}")]
    items += [("Compared with", f"{len(details.compared_events)} earlier evaluation(s)")]
    items += [("Stored runs", str(stored))]
    items += [("Generated", _time(at, seconds=True))] if at is not None else []
    cells = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in items)
    return f'<dl class="scope" id="scope">{cells}</dl>'


def _row(result: IndicatorResult, weight: float | None) -> str:
    value = result.value
    name = result.display_name or value.metric
    sli = f'<code class="sli">{_e(value.metric)}</code>' if name != value.metric else ""
    key = '<span class="badge key-sli" title="key SLI: failing it fails the gate">KEY SLI</span>'
    shown = _num(value.value) if value.success else "—"
    message = f'<div class="indicator-message">{_e(value.message)}</div>' if value.message else ""
    targets = (result.pass_targets or ()) + (result.warning_targets or ())
    compared = _num(value.compared_value) if any(map(_relative, targets)) else "—"
    if result.status == "info":
        score = "info"
    elif weight is None:
        score = format_number(result.score)
    else:
        score = f"{format_number(result.score)} / {format_number(weight)}"
    return (
        f'<tr class="objective" data-sli="{_e(value.metric)}" '
        f'data-status="{_e(result.status)}"><td><strong>{_e(name)}</strong>'
        f'{key if result.key_sli else ""}{sli}</td><td class="num">{shown}{message}</td>'
        f'<td class="num">{compared}</td><td>{_targets(result.pass_targets)}</td>'
        f"<td>{_targets(result.warning_targets)}</td>"
        f'<td><span class="status status-{_e(result.status)}">{_e(result.status)}</span></td>'
        f'<td class="num">{score}</td></tr>'
    )


def _targets(targets: tuple[Target, ...] | None) -> str:
    if not targets:
        return "—"
    items = "".join(
        f'<li class="target {"violated" if t.violated else "met"}" '
        f'title="{"violated" if t.violated else "met"}">{"✗" if t.violated else "✓"} '
        f"<code>{_e(t.criteria)}</code> → {_num(t.target_value)}</li>"
        for t in targets
    )
    return f'<ul class="targets">{items}</ul>'


def _chart(index: int, result: IndicatorResult, runs: list[_Run]) -> str:
    metric = result.value.metric
    points = [(i, run.values.get(metric)) for i, run in enumerate(runs)]
    values = [v for _, v in points if v is not None and math.isfinite(v)]
    lines = [(t, "pass", TARGET_COLOURS["pass"]) for t in result.pass_targets or ()]
    lines += [(t, "warning", TARGET_COLOURS["warning"]) for t in result.warning_targets or ()]
    if not result.value.success:  # lighthouse reports placeholders (0) when there is no value
        lines = [(fixed, k, c) for t, k, c in lines if (fixed := _fixed(t)) is not None]
    lines = [line for line in lines if math.isfinite(line[0].target_value)]
    low, high, ticks = _scale(values + [t.target_value for t, _, _ in lines])
    bottom, plot_h = _H - _BOTTOM, _H - _BOTTOM - _TOP

    def y_of(v: float) -> float:
        v = min(max(v, low), high)
        return bottom - (v - low) / (high - low) * plot_h

    def x_of(i: int) -> float:
        if len(runs) == 1:
            return (_LEFT + _W - _RIGHT) / 2
        return _LEFT + _INSET + (_W - _RIGHT - _LEFT - 2 * _INSET) * i / (len(runs) - 1)

    svg = [
        f'<svg class="chart" id="chart-{index}" data-sli="{_e(metric)}" width="{_W}" '
        f'height="{_H}" viewBox="0 0 {_W} {_H}" role="img" aria-label="history of '
        f'{_e(metric)}">'
    ]
    for tick in ticks:  # grid and y labels
        y = round(y_of(tick)) + 0.5
        svg.append(
            f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y}" y2="{y}" stroke="#eaeef2" '
            f'shape-rendering="crispEdges"/><text x="{_LEFT - 6}" y="{y + 4}" '
            f'text-anchor="end" fill="#57606a">{format_number(tick)}</text>'
        )
    step = max(1, math.ceil(len(runs) / 6))
    shown = [i for i in range(0, len(runs), step) if len(runs) - 1 - i >= step / 2]
    for i in [*shown, len(runs) - 1]:  # x labels: a few, always the last
        bold = ' font-weight="700"' if runs[i].current else ""
        svg.append(
            f'<text x="{min(max(x_of(i), 36), _W - 36):.1f}" y="{_H - 12}" text-anchor="middle" '
            f'fill="#57606a"{bold}>{_e(runs[i].label)}</text>'
        )
    svg.append(
        f'<path d="M{_LEFT - 0.5} {_TOP}V{bottom + 0.5}H{_W - _RIGHT}" fill="none" '
        'stroke="#8c959f" shape-rendering="crispEdges"/>'
    )
    labels: list[tuple[float, str, str]] = []
    for target, kind, colour in lines:
        y = round(y_of(target.target_value))
        svg.append(
            f'<line class="target target-{kind}" x1="{_LEFT}" x2="{_W - _RIGHT}" '
            f'y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2" '
            f'stroke-dasharray="8 5" shape-rendering="crispEdges"><title>{kind} target '
            f"{_e(target.criteria)} → {format_number(target.target_value)}</title></line>"
        )
        labels.append(
            (y, f"{kind} {target.criteria} → {format_number(target.target_value)}", colour)
        )
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
            f'stroke-width="3" paint-order="stroke" font-weight="600">{_e(text)}</text>'
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
                f'fill="none" stroke="#8c959f"><title>{_e(runs[i].label)}: no value'
                "</title></circle>"
            )
    for i, value in points:
        if value is None or not math.isfinite(value):
            continue
        run = runs[i]
        colour = RESULT_COLOURS.get(run.result, OTHER_COLOUR)
        ring = f'stroke="{SERIES_COLOUR}" stroke-width="2.5"' if run.current else _WHITE_RING
        note = " (invalidated)" if run.invalidated else ""
        faded = ' opacity="0.45"' if run.invalidated else ""
        svg.append(
            f'<circle class="series{" current" if run.current else ""}" '
            f'cx="{x_of(i):.1f}" cy="{y_of(value):.1f}" r="{7 if run.current else 5}" '
            f'fill="{colour}" {ring} data-value="{value!r}"'
            f"{faded}><title>{_e(run.label)}: "
            f"{format_number(value)} ({_e(run.result)}){note}</title></circle>"
        )
    svg.append("</svg>")
    current = _num(result.value.value) if result.value.success else "no value"
    name = result.display_name or metric
    sub = f" <code>{_e(metric)}</code>" if name != metric else ""
    legend = [f'<span><i class="ln" style="border-color:{SERIES_COLOUR}"></i>value per run</span>']
    legend += [
        f'<span><i class="dot" style="background:{RESULT_COLOURS[r]}"></i>run {r}</span>'
        for r in ("pass", "warning", "fail")
    ]
    for kind, colour in TARGET_COLOURS.items():
        if any(k == kind for _, k, _ in lines):
            legend.append(
                f'<span><i class="ln dash" style="border-color:{colour}"></i>{kind} target</span>'
            )
    return (
        f'<figure class="chart-card" data-sli="{_e(metric)}"><figcaption><strong>'
        f'{_e(name)}</strong>{sub} <span class="sub">· now {current} · '
        f"{len(values)}/{len(runs)} runs with a value</span></figcaption>"
        f'{"".join(svg)}<div class="legend">{"".join(legend)}</div></figure>'
    )


def _scale(values: list[float]) -> tuple[float, float, list[float]]:
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


def _weights(evaluation: Evaluation, count: int) -> list[float | None]:
    """Objective weights from the embedded slo.yaml, else what each score implies."""
    weights: list[float | None] = [None] * count
    content = evaluation.details.slo_file_content
    if content:
        try:
            slo = parse_slo(base64.b64decode(content, validate=True))
            if len(slo.objectives) == count:
                weights = [float(o.weight) for o in slo.objectives]
        except (binascii.Error, ValueError, SLOParseError):
            pass
    results = evaluation.details.indicator_results or ()
    for i, result in enumerate(results):
        if weights[i] is None and result.status in ("pass", "warning"):
            weights[i] = result.score * (2 if result.status == "warning" else 1)
    return weights


def _fixed(target: Target) -> Target | None:
    """A fixed criterion's own number (``<600`` → 600); None for relative or bad criteria."""
    try:
        criterion = parse_criteria(target.criteria)
    except CriteriaError:
        return None
    fixed = Target(target.criteria, criterion.value, target.violated)
    return None if criterion.is_comparison else fixed


def _relative(target: Target) -> bool:
    try:
        return parse_criteria(target.criteria).is_comparison
    except CriteriaError:
        return False


def _duration(start: str, end: str) -> str:
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (ValueError, TypeError):
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h {minutes % 60:02d}m {secs:02d}s" if seconds >= 0 else ""


def _time(unix: float, *, seconds: bool = False) -> str:
    try:
        moment = datetime.fromtimestamp(unix, UTC)
    except (OverflowError, OSError, ValueError):
        return format_number(unix)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%m-%d %H:%M")


def _num(value: float) -> str:
    return f'<span title="{value!r}">{_e(format_number(value))}</span>'


def _e(text: object) -> str:
    return escape(str(text), quote=True)
