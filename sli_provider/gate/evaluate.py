"""Scoring an slo.yaml against indicator values exactly as lighthouse-service does.

Follows lighthouse-service/event_handler/evaluate_sli_handler.go as of keptn 1.0 (commit
56977a3, the last lighthouse change before 1.2's failed-value fix, see ``_unsuccessful``):
``processGetSliFinishedEvent``, ``evaluateObjectives``, ``getSLIResult``,
``getEmptyTargets``, ``checkLeftoverSLI`` and ``calculateScore``, including their quirks.
Each quirk reproduced on purpose carries a comment, so it is not "fixed" by accident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sli_provider.errors import SliProviderError
from sli_provider.gate.criteria import (
    CriteriaError,
    aggregate_previous,
    evaluate_criterion,
    parse_criteria,
)
from sli_provider.gate.gonum import format_float, parse_float
from sli_provider.gate.previous import PreviousEvaluation, previous_values, select_previous
from sli_provider.gate.results import (
    Evaluation,
    EvaluationDetails,
    IndicatorLike,
    IndicatorValue,
    ScoredIndicator,
    SLIValue,
    Target,
    encode_slo_file,
)
from sli_provider.gate.slo import SLO, CriteriaSet, Objective, SLOParseError, TotalScore, parse_slo

NO_VALUE_MESSAGE = "no value received from SLI provider"


class ScoringError(SliProviderError, ValueError):
    """calculateScore failed; lighthouse then sends an errored evaluation with this text."""


@dataclass(frozen=True)
class ObjectivesOutcome:
    """What ``evaluateObjectives`` hands to the scoring step."""

    indicator_results: tuple[ScoredIndicator, ...] | None
    maximum_achievable_score: float
    key_sli_failed: bool
    message: str = ""  # the leftover-SLI hint
    error: str | None = None  # a pass criterion could not be evaluated: result fail


@dataclass(frozen=True)
class ScoreOutcome:
    result: str
    score: float
    message: str | None  # None: calculateScore leaves the message as it was


def evaluate(
    slo: SLO | str | bytes | Mapping[str, Any],
    indicator_values: Iterable[IndicatorLike | Mapping[str, Any]],
    previous: Iterable[PreviousEvaluation] = (),
    *,
    get_sli_status: str = "succeeded",
    get_sli_result: str = "pass",
    get_sli_message: str = "",
    time_start: str = "",
    time_end: str = "",
    slo_file_content: str | None = None,
) -> Evaluation:
    """Score one get-sli.finished against the SLO; never raises for lighthouse-handled input.

    ``previous`` is the evaluation history, newest first; the datastore's selection
    (include_result_with_score, invalidation, limit) is applied here. ``slo_file_content``
    is the raw slo.yaml text; when given it is reported the way lighthouse reports it.
    """
    given_file = slo_file_content is not None

    def errored(message: str, result: str, file_content: str = "") -> Evaluation:
        # sendErroredFinishedEventWithMessage / the early returns for errored get-sli.
        details = EvaluationDetails(
            time_start, time_end, result, 0.0, None, (), file_content if given_file else None
        )
        return Evaluation("fail", "errored", message, details)

    try:
        values = [IndicatorValue.from_keptn(item) for item in indicator_values]
    except (ValueError, TypeError, AttributeError) as exc:
        return errored(f"Could not parse event payload: {exc}", "fail")
    # Lighthouse pre-fills evaluation.result with "pass" before these two checks, so an
    # aborted or errored get-sli yields result fail next to evaluation.result "pass".
    if get_sli_status == "aborted":
        return errored("evaluation performed by lighthouse was aborted", "pass")
    if get_sli_status == "errored":
        return errored(
            f"evaluation performed by lighthouse received an unexpected error: {get_sli_message}",
            "pass",
        )
    if not isinstance(slo, SLO):
        try:
            slo = parse_slo(slo)
        except SLOParseError as exc:
            return errored(f"Could not parse SLO file: {exc}", "fail")

    selected = select_previous(previous, slo.comparison)
    compared_events = tuple(item.id for item in selected)
    encoded = encode_slo_file(slo_file_content) if slo_file_content is not None else None
    outcome = evaluate_objectives(slo, values, selected)
    if outcome.error is not None:
        details = EvaluationDetails(
            time_start, time_end, "fail", 0.0, None, compared_events, encoded
        )
        return Evaluation("fail", "succeeded", outcome.error, details)
    try:
        score = calculate_score(
            outcome.maximum_achievable_score,
            outcome.indicator_results or (),
            slo.total_score,
            outcome.key_sli_failed,
        )
    except ScoringError as exc:
        # Lighthouse passes string(sloFileContent) here: the raw YAML, not base64.
        return errored(str(exc), "fail", slo_file_content or "")

    result = score.result
    message = outcome.message if score.message is None else score.message
    if not slo.objectives:
        result = "fail"
        message = "lighthouse failed because no SLO objective was provided"
    elif get_sli_result == "fail":
        # Scored anyway; only the event result and message change, evaluation.result stays.
        result = "fail"
        message = f"lighthouse failed because SLI failed with message {get_sli_message}"
    details = EvaluationDetails(
        time_start,
        time_end,
        score.result,
        score.score,
        outcome.indicator_results,
        compared_events,
        encoded,
    )
    return Evaluation(result, "succeeded", message, details)


def evaluate_objectives(
    slo: SLO, indicator_values: Sequence[IndicatorValue], selected: Sequence[PreviousEvaluation]
) -> ObjectivesOutcome:
    """``evaluateObjectives``: per-objective status and score, maximum score, key-SLI failure."""
    if not slo.objectives:
        # Lighthouse returns a maximum of 100 here, so the score becomes 0 rather than 100.
        return ObjectivesOutcome(None, 100.0, False)
    remaining = list(indicator_values)
    results: list[ScoredIndicator] = []
    maximum = 0.0
    key_sli_failed = False
    for objective in slo.objectives:
        if objective.pass_criteria:  # info objectives do not count towards the maximum
            maximum += float(objective.weight)
        aggregated = aggregate_previous(
            previous_values(selected, objective.sli), slo.comparison.aggregate_function
        )
        value = take_indicator(remaining, objective.sli)
        if value is None:
            results.append(_missing(objective, aggregated))
            continue
        if not value.success:
            results.append(_unsuccessful(objective, value))
            key_sli_failed = key_sli_failed or (bool(objective.pass_criteria) and objective.key_sli)
            continue
        try:
            result, failed = _scored(objective, value, aggregated)
        except CriteriaError as exc:
            name = objective.display_name or objective.sli
            return ObjectivesOutcome(None, 100.0, key_sli_failed, error=f"error with {name}: {exc}")
        key_sli_failed = key_sli_failed or failed
        results.append(result)
    return ObjectivesOutcome(tuple(results), maximum, key_sli_failed, _leftover_message(remaining))


def take_indicator(remaining: list[IndicatorValue], sli: str) -> IndicatorValue | None:
    """``getSLIResult``: find and consume the first value for ``sli``.

    The value is removed by moving the last element into its slot, so one value serves one
    objective only (a second objective on the same SLI gets "no value"), and the order of
    what is left, which shows in the leftover message, is lighthouse's.
    """
    for index, item in enumerate(remaining):
        if item.metric == sli:
            remaining[index] = remaining[-1]
            remaining.pop()
            return item
    return None


def _scored(
    objective: Objective, value: IndicatorValue, aggregated: float | None
) -> tuple[ScoredIndicator, bool]:
    """A retrieved value against the pass, then warning criteria. Returns (result, key failed).

    Raises CriteriaError when a *pass* criterion cannot be evaluated.
    """
    compared = _Compared()
    passed, pass_targets, score, status = True, None, 0.0, "info"
    if objective.pass_criteria:
        passed, pass_targets = _any_set(objective.pass_criteria, value.value, aggregated, compared)
        score, status = (float(objective.weight), "pass") if passed else (0.0, "")
    warned, warning_targets = False, None
    if objective.warning_criteria:
        try:
            warned, warning_targets = _any_set(
                objective.warning_criteria, value.value, aggregated, compared
            )
        except CriteriaError:
            # Lighthouse ignores errors in warning criteria: not satisfied, targets [].
            warned, warning_targets = False, ()
        if not passed and warned:
            score, status = 0.5 * float(objective.weight), "warning"
    failed = not passed and not warned
    if failed:
        score, status = 0.0, "fail"
    result = ScoredIndicator(
        score=score,
        value=SLIValue(value.metric, value.value, compared.value, value.success, value.message),
        status=status,
        display_name=objective.display_name,
        pass_targets=pass_targets,
        warning_targets=warning_targets,
        key_sli=objective.key_sli,
    )
    return result, failed and objective.key_sli


class _Compared:
    """Lighthouse writes comparedValue through a pointer while evaluating each criterion."""

    value = 0.0


def evaluate_criteria_sets(
    sets: Sequence[CriteriaSet], measured: float, aggregated: float | None
) -> tuple[bool, tuple[Target, ...]]:
    """``evaluateOrCombinedCriteria`` for a retrieved value; raises CriteriaError."""
    return _any_set(sets, measured, aggregated, _Compared())


def _any_set(
    sets: Sequence[CriteriaSet], measured: float, aggregated: float | None, compared: _Compared
) -> tuple[bool, tuple[Target, ...]]:
    """OR over items (every item is evaluated, for its targets), AND inside one item."""
    satisfied = False
    targets: list[Target] = []
    for criteria_set in sets:
        set_satisfied = True  # evaluateCriteriaSet: AND inside one item
        for criteria in criteria_set.criteria:
            outcome = evaluate_criterion(criteria, measured, aggregated)
            compared.value = outcome.compared_value
            set_satisfied = set_satisfied and outcome.satisfied
            targets.append(Target(criteria, outcome.target_value, not outcome.satisfied))
        satisfied = satisfied or set_satisfied
    return satisfied, tuple(targets)


def _missing(objective: Objective, aggregated: float | None) -> ScoredIndicator:
    """An objective whose SLI is not among the indicator values (getEmptyTargets branch).

    Lighthouse neither copies key_sli here nor marks a key SLI as failed, reports [] rather
    than null for absent criteria, and uses the bare aggregate as relative targets' value.
    """
    return ScoredIndicator(
        score=0.0,
        value=SLIValue(objective.sli, 0.0, 0.0, False, NO_VALUE_MESSAGE),
        status="fail",
        display_name=objective.display_name,
        pass_targets=_placeholder_targets(objective.pass_criteria, aggregated),
        warning_targets=_placeholder_targets(objective.warning_criteria, aggregated),
    )


def _placeholder_targets(
    sets: Sequence[CriteriaSet], aggregated: float | None
) -> tuple[Target, ...]:
    targets = []
    for criteria_set in sets:
        for criteria in criteria_set.criteria:
            try:
                criterion = parse_criteria(criteria)
            except CriteriaError:
                continue  # unparseable criteria are silently left out
            target = criterion.value if not criterion.is_comparison else (aggregated or 0.0)
            targets.append(Target(criteria, target, True))
    return tuple(targets)


def _unsuccessful(objective: Objective, value: IndicatorValue) -> ScoredIndicator:
    """A value the provider marked ``success: false``.

    Keptn 1.0 failed the whole evaluation here ("error with X: cannot evaluate invalid SLI
    result"); 1.2 (PR #9495, issue #9494) fails only the objective (a key SLI fails the
    gate), info objectives stay info. The targets are reported violated with targetValue 0,
    as lighthouse did before 1.0 and as Bridge's recorded evaluations show; the 1.2 source
    for this branch could not be read, so that detail is the one unverified part.
    """

    def violated(sets: Sequence[CriteriaSet]) -> tuple[Target, ...] | None:
        if not sets:
            return None
        return tuple(Target(c, 0.0, True) for s in sets for c in s.criteria)

    return ScoredIndicator(
        score=0.0,
        value=SLIValue(value.metric, value.value, 0.0, False, value.message),
        status="fail" if objective.pass_criteria else "info",
        display_name=objective.display_name,
        pass_targets=violated(objective.pass_criteria),
        warning_targets=violated(objective.warning_criteria),
        key_sli=objective.key_sli,
    )


def _leftover_message(remaining: Sequence[IndicatorValue]) -> str:
    """``checkLeftoverSLI``: a hint naming values no objective consumed."""
    names = ""
    for item in remaining:  # same loop as lighthouse, including its handling of "" names
        if names:
            names += ", "
        names += item.metric
    if not names:
        return ""
    return (
        "Lighthouse received additional SLIs, which are not specified as SLO: "
        f"{names} . Please consider using them as an SLO."
    )


def calculate_score(
    maximum_achievable_score: float,
    indicator_results: Sequence[ScoredIndicator],
    total_score: TotalScore | None,
    key_sli_failed: bool,
) -> ScoreOutcome:
    """``calculateScore``. Raises ScoringError where lighthouse returns an error."""
    if total_score is None or total_score.pass_target == "":
        raise ScoringError("no target score defined")
    try:
        pass_target = parse_float(_trim_percent(total_score.pass_target))
    except ValueError:
        raise ScoringError("could not parse pass target percentage") from None
    warning_target: float | None = None
    if total_score.warning_target != "":
        try:
            warning_target = parse_float(_trim_percent(total_score.warning_target))
        except ValueError:
            raise ScoringError("could not parse warning target percentage") from None
    if maximum_achievable_score == 0:
        return ScoreOutcome("pass", 100.0, None)  # only info objectives
    total = 0.0
    for result in indicator_results:
        total += result.score
    achieved = 100.0 * (total / maximum_achievable_score)
    if achieved >= pass_target and not key_sli_failed:
        return ScoreOutcome("pass", achieved, None)
    shown = format_float(achieved)
    if warning_target is not None and not key_sli_failed:
        warn = format_float(warning_target)
        if achieved >= warning_target:
            return ScoreOutcome(
                "warning",
                achieved,
                "Evaluation returned a warning: the calculated score of "
                f"{shown} is close to the warning target value of {warn}",
            )
        return ScoreOutcome(
            "fail",
            achieved,
            f"Evaluation failed since the calculated score of {shown} is below the warning "
            f"value of {warn}",
        )
    return ScoreOutcome(
        "fail",
        achieved,
        f"Evaluation failed since the calculated score of {shown} is below the target value "
        f"of {format_float(pass_target)}",
    )


def _trim_percent(text: str) -> str:
    return text[:-1] if text.endswith("%") else text  # strings.TrimSuffix: one "%" only
