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
from typing import Any

from sli_provider.gate.display import (
    INFORMATIONAL,
    is_informational,
    is_relative,
    shows_compared_value,
    target_note,
)
from sli_provider.gate.html_chart import (
    ERRORED_COLOUR,
    MAX_RUNS,
    OTHER_COLOUR,
    RESULT_COLOURS,
    Run,
    RunTarget,
    chart_svg,
    escape_html,
    format_number,
    format_time,
    number_html,
    time_labels,
)
from sli_provider.gate.records import StoredEvaluation
from sli_provider.gate.results import Evaluation, ScoredIndicator, Target
from sli_provider.gate.slo import SLOParseError, parse_slo
from sli_provider.keptn.timestamps import TimestampError, parse_keptn

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
.no-objectives{background:#fff;border:1px solid #d0d7de;border-left:4px solid #6e7781;
border-radius:8px;padding:12px 16px;margin:0}svg.chart{max-width:100%;height:auto}
@media (max-width:700px){body{padding:10px}.verdict{padding:12px 14px}
.verdict .word{font-size:26px}.charts{grid-template-columns:minmax(0,1fr)}
#objectives thead{display:none}#objectives,#objectives tbody,#objectives tr,#objectives td{
display:block;width:100%}#objectives tr{border-bottom:2px solid #d0d7de}
#objectives td{border-bottom:0;padding:3px 10px;text-align:left;white-space:normal}
#objectives td[data-label]::before{content:attr(data-label) ": ";color:#57606a;font-size:12px}
.targets li{white-space:normal}}
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
        "<h2>Objectives</h2>",
    ]
    if results:
        parts.append(
            '<table id="objectives"><thead><tr><th>Objective</th>'
            "<th>Value</th><th>Compared</th><th>Pass targets</th><th>Warning targets</th>"
            "<th>Status</th><th>Score / weight</th></tr></thead><tbody>"
        )
        weights = _weights(evaluation, len(results))
        parts += [_row(result, weights[i], evaluation) for i, result in enumerate(results)]
        parts.append("</tbody></table>")
    else:  # an errored run has nothing to tabulate: say why instead
        reason = evaluation.message or "no reason was given"
        lead = "The evaluation errored" if evaluation.errored else "No objectives were scored"
        parts.append(
            f'<p class="no-objectives" id="no-objectives"><strong>{lead}</strong>, so no '
            f"objective has a value: {escape_html(reason)}</p>"
        )
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
    oldest_first = list(reversed(history))
    times: list[float | None] = [item.time for item in oldest_first]
    if not stored:
        times.append(_end_time(evaluation))
    labels = time_labels(times)
    runs = []
    for index, item in enumerate(oldest_first):
        statuses, relative = _per_sli(item.data)
        runs.append(Run(
            labels[index], item.result, item.values(),
            current=stored and index == len(oldest_first) - 1, invalidated=item.invalidated,
            statuses=statuses, relative_targets=relative, when=format_time(item.time, seconds=True),
        ))  # fmt: skip
    if not stored:
        statuses, relative = _per_sli(evaluation.to_keptn())
        end = times[-1]
        runs.append(Run(
            labels[-1], evaluation.result, current_values, current=True, statuses=statuses,
            relative_targets=relative,
            when=format_time(end, seconds=True) if end is not None else "current",
        ))  # fmt: skip
    return runs


def _end_time(evaluation: Evaluation) -> float | None:
    try:
        return parse_keptn(evaluation.details.time_end)
    except TimestampError:
        return None


def _per_sli(data: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, tuple[RunTarget, ...]]]:
    """Each SLI's status in one run, and the relative targets that run computed for it.

    A relative target counts only when the run had a value and something to compare with;
    otherwise lighthouse's 0 is a placeholder, not a target.
    """
    details = data.get("evaluation")
    if not isinstance(details, Mapping):
        return {}, {}
    compared = bool(details.get("comparedEvents"))
    statuses: dict[str, str] = {}
    relative: dict[str, tuple[RunTarget, ...]] = {}
    for item in details.get("indicatorResults") or ():
        value = item.get("value") if isinstance(item, Mapping) else None
        if not isinstance(value, Mapping):
            continue
        metric = str(value.get("metric"))
        statuses.setdefault(metric, str(item.get("status", "")))
        if metric in relative or not (compared and value.get("success")):
            continue
        found = []
        for kind, key in (("pass", "passTargets"), ("warning", "warningTargets")):
            for target in item.get(key) or ():
                number = target.get("targetValue") if isinstance(target, Mapping) else None
                criteria = str(target.get("criteria", "")) if isinstance(target, Mapping) else ""
                if isinstance(number, int | float) and is_relative(Target(criteria, 0.0, False)):
                    found.append(RunTarget(kind, criteria, float(number)))
        relative[metric] = tuple(found)
    return statuses, relative


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
    compared = (
        number_html(value.compared_value) if shows_compared_value(result, evaluation) else "—"
    )
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
        f"{key if result.key_sli else ''}{info}{sli}</td>"
        f'<td class="num" data-label="Value">{shown}{message}</td>'
        f'<td class="num" data-label="Compared">{compared}</td>'
        f'<td data-label="Pass targets">{_targets(result.pass_targets, result, evaluation)}</td>'
        f'<td data-label="Warning targets">'
        f"{_targets(result.warning_targets, result, evaluation)}</td>"
        f'<td data-label="Status"><span class="status status-{escape_html(result.status)}">'
        f"{escape_html(result.status)}</span></td>"
        f'<td class="num" data-label="Score / weight">{score}</td></tr>'
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
