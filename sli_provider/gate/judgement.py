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
    strict: bool = False,
    get_sli_status: str = "succeeded",
    get_sli_result: str = "pass",
    get_sli_message: str = "",
) -> Verdict:
    """``history``: the scope's earlier evaluations, newest first, this run's own left out.
    ``get_sli_*``: the get-sli outcome the values came with (an errored one errors the
    evaluation, as in lighthouse)."""
    slo = parsed_slo(slo_text)
    evaluation = evaluate(
        slo if slo is not None else slo_text,
        values,
        [h.as_previous() for h in history],
        get_sli_status=get_sli_status,
        get_sli_result=get_sli_result,
        get_sli_message=get_sli_message,
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
    return decide(evaluation, found, k6=k6, policy=policy, strict=strict)


def record_for(
    verdict: Verdict, scope: tuple[str, str, str], context: str, when: float
) -> StoredEvaluation:
    """The history entry of a verdict. The history keeps the verdict as ``result``, the way
    Keptn's datastore keeps lighthouse's, so later runs' ``include_result_with_score`` compare
    only with runs whose gate passed; lighthouse's own result stays in ``evaluation.result``."""
    data = verdict.to_data()
    return StoredEvaluation(
        id=str(uuid.uuid4()),
        project=scope[0],
        stage=scope[1],
        service=scope[2],
        context=context,
        time=when,
        result=verdict.result,
        score=verdict.score,
        data={
            k: data[k]
            for k in ("result", "status", "message", "reasons", "evaluation")
            if k in data
        },
    )
