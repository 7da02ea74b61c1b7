"""One evaluation of a run, scored as ``sli-provider evaluate`` scores it, for the gate endpoint.

The same steps as the CLI: lighthouse's scoring (``evaluate``) against the history, an invalid
slo.yaml and key SLIs without a value as warnings, then the verdict (``decide``). Pure.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sli_provider.gate.evaluate import evaluate
from sli_provider.gate.lint import slo_problems
from sli_provider.gate.records import StoredEvaluation
from sli_provider.gate.slo import SLO, SLOParseError, parse_slo
from sli_provider.gate.verdict import GateWarning, K6Run, Verdict, decide, key_sli_warnings


def parsed_slo(text: str) -> SLO | None:
    """None when slo.yaml does not parse: it is scored anyway, errored as lighthouse does."""
    try:
        return parse_slo(text)
    except SLOParseError:
        return None


def judge(
    slo_text: str,
    values: Sequence[Any],
    history: Sequence[StoredEvaluation],
    *,
    start: str,
    end: str,
    warnings: Sequence[GateWarning] = (),
    k6: K6Run | None = None,
    policy: str = "fail",
) -> Verdict:
    """``history``: the scope's earlier evaluations, newest first, this run's own left out."""
    slo = parsed_slo(slo_text)
    evaluation = evaluate(
        slo if slo is not None else slo_text,
        values,
        [h.as_previous() for h in history],
        time_start=start,
        time_end=end,
        slo_file_content=slo_text,
    )
    found = list(warnings)
    problems = slo_problems(slo_text)
    if problems:
        shown = "; ".join(str(p) for p in problems[:5]) + ("; …" if len(problems) > 5 else "")
        found.append(
            GateWarning(
                "slo_invalid",
                f"slo.yaml is invalid ({shown}); the result "
                "is lighthouse's for this file (see sli-provider check)",
            )
        )
    key_slis = {o.sli for o in slo.objectives if o.key_sli} if slo is not None else set()
    found.extend(key_sli_warnings(evaluation, key_slis))
    return decide(evaluation, found, k6=k6, policy=policy)


def record_for(
    verdict: Verdict, scope: tuple[str, str, str], context: str, when: float
) -> StoredEvaluation:
    """The history entry of a verdict: lighthouse's evaluation under the gate's result, which is
    also ``data.result``, the result later runs' ``include_result_with_score`` selects by (the
    datastore's filter); lighthouse's own stays in ``data.evaluation.result``."""
    evaluation = verdict.evaluation
    return StoredEvaluation(
        id=str(uuid.uuid4()),
        project=scope[0],
        stage=scope[1],
        service=scope[2],
        context=context,
        time=when,
        result=verdict.result,
        score=evaluation.details.score,
        data={**evaluation.to_keptn(), "result": verdict.result},
    )
