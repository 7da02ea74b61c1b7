"""A self-contained HTML report of one verdict and the stored runs before it (pure).

The page has inline CSS and inline SVG charts; it has no scripts and fetches nothing (a
Content-Security-Policy forbids it). This module gathers what the page shows; the markup is
the template's (templates/report.html.j2, html_template.py), which escapes every string.
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
    format_number,
    format_time,
    layout_chart,
    time_labels,
)
from sli_provider.gate.html_template import render_report
from sli_provider.gate.records import StoredEvaluation
from sli_provider.gate.results import Evaluation, ScoredIndicator, Target
from sli_provider.gate.slo import SLOParseError, parse_slo
from sli_provider.gate.verdict import Verdict, decide
from sli_provider.keptn.timestamps import TimestampError, parse_keptn


def render_html(
    evaluation: Evaluation,
    history: Sequence[StoredEvaluation],
    *,
    project: str,
    stage: str,
    service: str,
    generated_at: float | None = None,
    verdict: Verdict | None = None,
) -> str:
    """The report page. ``history`` is newest first and may start with this evaluation.

    ``verdict``: the gate's (gate/verdict.py); lighthouse's result when none is given.
    """
    verdict = verdict or decide(evaluation, ())
    results = evaluation.details.indicator_results or ()
    runs = _runs(evaluation, history, verdict.result)
    weights = _weights(evaluation, len(results))
    rows = [_row(result, weights[i], evaluation) for i, result in enumerate(results)]
    charts = []
    if results:
        seen: set[str] = set()
        for index, result in enumerate(results):
            if result.value.metric not in seen:  # one chart per SLI, the first objective's
                seen.add(result.value.metric)
                charts.append(layout_chart(index, result, runs[-MAX_RUNS:]))
    colour = ERRORED_COLOUR if verdict.errored else RESULT_COLOURS.get(verdict.word, OTHER_COLOUR)
    return render_report(
        {
            "evaluation": evaluation,
            "verdict": verdict,
            "project": project,
            "stage": stage,
            "service": service,
            "banner_colour": colour,
            "scope": _scope(evaluation, (project, stage, service), len(history), generated_at),
            "rows": rows,
            "informational": INFORMATIONAL,
            "charts": charts,
            "shown": f"the latest {MAX_RUNS} of " if len(runs) > MAX_RUNS else "",
            "runs": len(runs),
        }
    )


def _runs(evaluation: Evaluation, history: Sequence[StoredEvaluation], result: str) -> list[Run]:
    """Oldest first; the current evaluation last (added when the history lacks it).

    ``result`` is the current evaluation's verdict, as the history stores it.
    """
    current_values = {
        r.value.metric: r.value.value
        for r in reversed(evaluation.details.indicator_results or ())
        if r.value.success
    }
    stored = bool(history) and _is_current(history[0], evaluation, current_values, result)
    oldest_first = list(reversed(history))
    times: list[float | None] = [item.time for item in oldest_first]
    if not stored:
        times.append(_end_time(evaluation))
    labels = time_labels(times)
    runs = []
    for index, item in enumerate(oldest_first):
        statuses, relative = _per_sli(item.data)
        runs.append(
            Run(
                labels[index],
                item.result,
                item.values(),
                current=stored and index == len(oldest_first) - 1,
                invalidated=item.invalidated,
                statuses=statuses,
                relative_targets=relative,
                when=format_time(item.time, seconds=True),
            )
        )
    if not stored:
        statuses, relative = _per_sli(evaluation.to_keptn())
        end = times[-1]
        runs.append(
            Run(
                labels[-1],
                evaluation.result,
                current_values,
                current=True,
                statuses=statuses,
                relative_targets=relative,
                when=format_time(end, seconds=True) if end is not None else "current",
            )
        )
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


def _is_current(
    item: StoredEvaluation, evaluation: Evaluation, values: dict[str, float], result: str
) -> bool:
    stored = item.data.get("evaluation")
    if not isinstance(stored, Mapping):
        return False
    details = evaluation.details
    return (
        stored.get("timeStart") == details.time_start
        and stored.get("timeEnd") == details.time_end
        and stored.get("score") == details.score
        and item.data.get("result") in (result, evaluation.result)
        and item.values() == values
    )


def _scope(
    evaluation: Evaluation, scope: tuple[str, str, str], stored: int, at: float | None
) -> list[tuple[str, str]]:
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
    return items


def _row(result: ScoredIndicator, weight: float | None, evaluation: Evaluation) -> dict[str, Any]:
    """What one objective's row shows; the template lays it out."""
    informational = is_informational(result)
    if informational:
        score = "not scored"
    elif weight is None:
        score = format_number(result.score)
    else:
        score = f"{format_number(result.score)} / {format_number(weight)}"
    return {
        "result": result,
        "name": result.display_name or result.value.metric,
        "informational": informational,
        "compared": shows_compared_value(result, evaluation),
        "pass_targets": _targets(result.pass_targets, result, evaluation),
        "warning_targets": _targets(result.warning_targets, result, evaluation),
        "score": score,
    }


def _targets(
    targets: tuple[Target, ...] | None, result: ScoredIndicator, evaluation: Evaluation
) -> list[tuple[Target, str | None]]:
    """Each target with why it has no value to show (lighthouse's placeholder 0), if so."""
    return [(t, target_note(t, result, evaluation)) for t in targets or ()]


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
