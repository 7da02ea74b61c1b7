"""What a reader needs beside lighthouse's numbers, shared by the table and the HTML report.

Lighthouse reports a relative target it could not compute (nothing to compare with yet) and
every target of an SLI without a value as ``targetValue: 0``. Shown as is, ``(0)`` reads like
a real threshold; these helpers say what it is instead. The stored JSON keeps lighthouse's 0.
"""

from __future__ import annotations

from sli_provider.gate.criteria import CriteriaError, parse_criteria
from sli_provider.gate.results import Evaluation, ScoredIndicator, Target

NO_PREVIOUS = "no previous result to compare"
NO_VALUE = "not evaluated: no value"
INFORMATIONAL = "informational: no pass criteria, not scored"


def is_relative(target: Target) -> bool:
    try:
        return parse_criteria(target.criteria).is_comparison
    except CriteriaError:
        return False


def target_note(target: Target, result: ScoredIndicator, evaluation: Evaluation) -> str | None:
    """Why the target has no value to show, or None when ``target_value`` is the real one."""
    if not result.value.success:
        return NO_VALUE
    if is_relative(target) and not evaluation.details.compared_events:
        return NO_PREVIOUS
    return None


def shows_compared_value(result: ScoredIndicator, evaluation: Evaluation) -> bool:
    """Whether ``comparedValue`` is a baseline: only a relative target compares with earlier
    results, and only when there are some; otherwise lighthouse's number is 0 or an operand."""
    targets = (result.pass_targets or ()) + (result.warning_targets or ())
    return bool(evaluation.details.compared_events) and any(map(is_relative, targets))


def is_informational(result: ScoredIndicator) -> bool:
    """An objective without pass criteria: shown, never scored (lighthouse's ``info`` status)."""
    return result.status == "info"
