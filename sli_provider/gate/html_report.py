"""A self-contained HTML report of one evaluation and the stored runs before it (pure).

The page has inline CSS and inline SVG charts drawn here; it has no scripts and fetches
nothing (a Content-Security-Policy forbids it). Every user-supplied string (SLI names,
display names, criteria, messages) goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import datetime

from sli_provider.gate.display import INFORMATIONAL, is_informational, target_note
from sli_provider.gate.html_chart import (
    ERRORED_COLOUR,
    MAX_RUNS,
    OTHER_COLOUR,
    RESULT_COLOURS,
    Run,
    chart_svg,
    escape_html,
    format_number,
    format_time,
    is_relative,
    number_html,
)
from sli_provider.gate.records import StoredEvaluation
from sli_provider.gate.results import Evaluation, ScoredIndicator, Target
from sli_provider.gate.slo import SLOParseError, parse_slo

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
tr.informational td{background:#f6f8fa;color:#57606a;font-style:italic}
tr.informational td:first-child{border-left:4px dashed #8c959f}
.badge.info{background:#eaeef2;color:#57606a;border-color:#8c959f}
.target.unevaluated{color:#57606a;white-space:normal}.target .note{font-style:italic}
"""


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
        f"<title>{escape_html(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>Quality gate · {escape_html(project)} / {escape_html(stage)} / {escape_html(service)}</h1>",
        _banner(evaluation, verdict),
        _scope(evaluation, (project, stage, service), len(history), generated_at),
        '<h2>Objectives</h2><table id="objectives"><thead><tr><th>Objective</th>'
        "<th>Value</th><th>Compared</th><th>Pass targets</th><th>Warning targets</th>"
        "<th>Status</th><th>Score / weight</th></tr></thead><tbody>",
    ]
    weights = _weights(evaluation, len(results))
    parts += [_row(result, weights[i], evaluation) for i, result in enumerate(results)]
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
                parts.append(chart_svg(index, result, runs[-MAX_RUNS:]))
        parts.append("</div>")
    parts.append(
        "<footer>Scored like Keptn's lighthouse-service; generated by sli-provider."
        "</footer></main></body></html>"
    )
    return "\n".join(parts)


def _runs(evaluation: Evaluation, history: Sequence[StoredEvaluation]) -> list[Run]:
    """Oldest first; the current evaluation last (added when the history lacks it)."""
    current_values = {
        r.value.metric: r.value.value
        for r in reversed(evaluation.details.indicator_results or ())
        if r.value.success
    }
    stored = bool(history) and _is_current(history[0], evaluation, current_values)
    runs = [
        Run(
            format_time(item.time),
            item.result,
            item.values(),
            index == 0 and stored,
            item.invalidated,
        )
        for index, item in enumerate(history)
    ][::-1]
    if not stored:
        runs.append(Run("current", evaluation.result, current_values, current=True))
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
        f'<header id="verdict" class="verdict verdict-{escape_html(verdict)}" data-result="{escape_html(verdict)}" '
        f'style="background:{colour}"><span class="word">{escape_html(verdict.upper())}</span>'
        f'<span class="score" id="score">score {escape_html(score)}%</span>'
        f'<p class="message" id="message">{escape_html(message)}</p></header>'
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
    items += [("Generated", format_time(at, seconds=True))] if at is not None else []
    cells = "".join(
        f"<div><dt>{escape_html(k)}</dt><dd>{escape_html(v)}</dd></div>" for k, v in items
    )
    return f'<dl class="scope" id="scope">{cells}</dl>'


def _row(result: ScoredIndicator, weight: float | None, evaluation: Evaluation) -> str:
    value = result.value
    name = result.display_name or value.metric
    sli = f'<code class="sli">{escape_html(value.metric)}</code>' if name != value.metric else ""
    key = '<span class="badge key-sli" title="key SLI: failing it fails the gate">KEY SLI</span>'
    shown = number_html(value.value) if value.success else "—"
    message = (
        f'<div class="indicator-message">{escape_html(value.message)}</div>'
        if value.message
        else ""
    )
    targets = (result.pass_targets or ()) + (result.warning_targets or ())
    compared = number_html(value.compared_value) if any(map(is_relative, targets)) else "—"
    informational = is_informational(result)
    if informational:
        score = "not scored"
    elif weight is None:
        score = format_number(result.score)
    else:
        score = f"{format_number(result.score)} / {format_number(weight)}"
    info = f'<span class="badge info" title="{INFORMATIONAL}">INFO</span>' if informational else ""
    row_class = "objective informational" if informational else "objective"
    return (
        f'<tr class="{row_class}" data-sli="{escape_html(value.metric)}" '
        f'data-status="{escape_html(result.status)}"><td><strong>{escape_html(name)}</strong>'
        f'{key if result.key_sli else ""}{info}{sli}</td><td class="num">{shown}{message}</td>'
        f'<td class="num">{compared}</td><td>{_targets(result.pass_targets, result, evaluation)}</td>'
        f"<td>{_targets(result.warning_targets, result, evaluation)}</td>"
        f'<td><span class="status status-{escape_html(result.status)}">{escape_html(result.status)}</span></td>'
        f'<td class="num">{score}</td></tr>'
    )


def _targets(
    targets: tuple[Target, ...] | None, result: ScoredIndicator, evaluation: Evaluation
) -> str:
    if not targets:
        return "—"
    items = []
    for t in targets:
        note = target_note(t, result, evaluation)
        if note is not None:  # lighthouse's placeholder 0 is no target: say what it is
            items.append(
                f'<li class="target unevaluated"><code>{escape_html(t.criteria)}</code> '
                f'<span class="note">{escape_html(note)}</span></li>'
            )
            continue
        state = "violated" if t.violated else "met"
        items.append(
            f'<li class="target {state}" title="{state}">{"✗" if t.violated else "✓"} '
            f"<code>{escape_html(t.criteria)}</code> → {number_html(t.target_value)}</li>"
        )
    return f'<ul class="targets">{"".join(items)}</ul>'


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


def _duration(start: str, end: str) -> str:
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (ValueError, TypeError):
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h {minutes % 60:02d}m {secs:02d}s" if seconds >= 0 else ""
