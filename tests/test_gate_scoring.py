"""Quality-gate scoring, case by case, as Keptn's lighthouse-service scores.

Every case cites where the behaviour comes from in keptn/keptn (keptn 1.x):
``evaluate_sli_handler_test.go`` / ``common_test.go`` / ``main_test.go`` tests, or, where no
upstream test pins a rule, the Go function in ``evaluate_sli_handler.go`` / ``common.go`` /
``mongodb-datastore/handlers/events.go`` that implements it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from sli_provider.gate import (
    DEFAULT_COMPARISON,
    NO_VALUE_MESSAGE,
    SLO,
    Comparison,
    CriteriaError,
    CriteriaSet,
    Criterion,
    IndicatorValue,
    Objective,
    PreviousEvaluation,
    PreviousIndicatorResult,
    ScoredIndicator,
    ScoringError,
    SLIValue,
    SLOParseError,
    Target,
    TotalScore,
    aggregate_previous,
    calculate_score,
    compare,
    encode_slo_file,
    evaluate,
    evaluate_criteria_sets,
    evaluate_criterion,
    evaluate_objectives,
    parse_criteria,
    parse_slo,
    percentile,
    previous_values,
    select_previous,
    take_indicator,
)
from sli_provider.gate.gonum import format_float, parse_float

CASES = Path(__file__).parent / "gate_cases"
SEVERAL_PASS_2_AVG = Comparison("several_results", "pass", 2, "avg")
TOTAL_90_75 = TotalScore("90%", "75%")


def _sets(*items: tuple[str, ...]) -> tuple[CriteriaSet, ...]:
    return tuple(CriteriaSet(item) for item in items)


def _prev(result: str, *values: tuple[str, float, bool], event_id: str = "") -> PreviousEvaluation:
    return PreviousEvaluation(
        id=event_id,
        result=result,
        indicator_results=tuple(PreviousIndicatorResult(m, v, s) for m, v, s in values),
    )


def _value(metric: str, value: float, success: bool = True, message: str = "") -> IndicatorValue:
    return IndicatorValue(metric, value, success, message)


def _agg(values: list[float], function: str = "avg") -> float | None:
    return aggregate_previous(values, function)


# The objective used throughout TestEvaluateObjectives / TestCalculateScore.
METRIC_1 = Objective(
    sli="my-test-metric-1",
    pass_criteria=_sets(("<=15.0",), ("<=+10%",)),
    warning_criteria=_sets(("<=20.0",), ("<=+15%",)),
)


# --- parseCriteriaString ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("<10", Criterion("<", 10, False, False, False)),
        ("<=10", Criterion("<=", 10, False, False, False)),
        ("=10", Criterion("=", 10, False, False, False)),
        (">=10", Criterion(">=", 10, False, False, False)),
        (">10", Criterion(">", 10, False, False, False)),
        (">-10%", Criterion(">", 10, True, True, False)),
        ("<=+10.5%", Criterion("<=", 10.5, True, True, True)),
        ("<=+10", Criterion("<=", 10, False, True, True)),
        ("  <=+10   %", Criterion("<=", 10, True, True, True)),
        ("  <=10%", Criterion("<=", 10, True, True, True)),  # % without sign counts as +
    ],
)
def test_parse_criteria_string(criteria: str, expected: Criterion) -> None:
    """lighthouse evaluate_sli_handler_test.go TestParseCriteriaString (all cases)."""
    assert parse_criteria(criteria) == expected


@pytest.mark.parametrize(
    ("criteria", "error"),
    [
        ("500", "invalid criteria string"),  # no operator
        ("!=5", "invalid criteria string"),  # != is not an operator
        ("<", "could not parse criteria target value"),
        ("<=10%%", "could not parse criteria target value"),  # only one % is stripped
        ("<<5", "could not parse criteria target value"),
        ("<\t5", "could not parse criteria target value"),  # only spaces are removed
        ("<1_0", "could not parse criteria target value"),  # Go's ParseFloat, not Python's
    ],
)
def test_unparseable_criteria_strings(criteria: str, error: str) -> None:
    """lighthouse evaluate_sli_handler.go parseCriteriaString: its two error texts."""
    with pytest.raises(CriteriaError, match=f"^{error}$"):
        parse_criteria(criteria)


# --- evaluateValue / evaluateFixedThreshold --------------------------------------------


@pytest.mark.parametrize(
    ("measured", "operator", "expected", "result"),
    [
        (10, ">", 9, True),
        (10, ">=", 10, True),
        (10, "<=", 10, True),
        (10, "<", 10, False),
        (10, ">", 10, False),
    ],
)
def test_evaluate_value(measured: float, operator: str, expected: float, result: bool) -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateValue."""
    assert compare(measured, operator, expected) is result


def test_evaluate_value_unknown_operator() -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateValue '10 ? 10 should return an error'."""
    with pytest.raises(CriteriaError, match="no operator set"):
        compare(10, "?", 10)


@pytest.mark.parametrize(("criteria", "satisfied"), [(">9.0", True), ("=9.0", False)])
def test_evaluate_fixed_threshold(criteria: str, satisfied: bool) -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateFixedThreshold: targetValue = value."""
    outcome = evaluate_criterion(criteria, 10.0, None)
    assert (outcome.satisfied, outcome.target_value) == (satisfied, 9.0)


# --- calculatePercentile / aggregateValues ---------------------------------------------


@pytest.mark.parametrize(("fraction", "expected"), [(0.5, 5.0), (0.9, 9.8), (0.95, 10.0)])
def test_calculate_percentile(fraction: float, expected: float) -> None:
    """lighthouse evaluate_sli_handler_test.go TestCalculatePercentile (0..10)."""
    assert percentile([float(v) for v in range(11)], fraction) == expected


def test_percentile_interpolates_at_p_times_n_plus_one() -> None:
    """lighthouse evaluate_sli_handler.go calculatePercentile: rank p·(n+1), clamped to the ends."""
    assert percentile([5.0, 10.0], 0.5) == 7.5  # rank 1.5
    assert percentile([3.0, 1.0, 2.0], 0.2) == 1.0  # rank 0.8 < 1: minimum (input unsorted)
    assert percentile([1.0, 2.0, 3.0], 0.95) == 3.0  # rank 3.8 >= n: maximum


def test_aggregate_values() -> None:
    """lighthouse evaluate_sli_handler_test.go Test_aggregateValues (three cases)."""
    both = _prev("pass", ("m", 5.0, True), ("m", 15.0, True))
    assert _agg(list(previous_values([both], "m"))) == 10.0
    assert _agg([]) is None  # "Skip because of no previous results"
    failed = _prev("pass", ("m", 5.0, False), ("m", 15.0, False))
    assert previous_values([failed], "m") == ()  # "Skip because of no previous success"


@pytest.mark.parametrize(
    ("function", "expected"), [("avg", 5.5), ("p50", 5.5), ("p90", 9.9), ("p95", 10.0)]
)
def test_aggregate_functions(function: str, expected: float) -> None:
    """lighthouse evaluate_sli_handler.go aggregateValues: avg, p50, p90, p95 over 1..10."""
    result = _agg([float(v) for v in range(1, 11)], function)
    assert result is not None
    assert math.isclose(result, expected)


def test_unknown_aggregate_function_yields_zero() -> None:
    """lighthouse evaluate_sli_handler.go aggregateValues: the switch has no default value."""
    assert _agg([10.0, 20.0], "median") == 0.0
    outcome = evaluate_criterion("<=+10%", 5.0, _agg([10.0], "max"))
    assert (outcome.satisfied, outcome.target_value) == (False, 0.0)


# --- evaluateSingleCriteria / evaluateComparison ---------------------------------------


@pytest.mark.parametrize(
    ("name", "measured", "criteria", "function", "satisfied"),
    [
        ("10.0 <= avg([10.0, 10.0]) + 10%", 10.0, "<=+10%", "avg", True),
        ("11.01 <= avg([10.0, 10.0]) + 10%", 11.01, "<=+10%", "avg", False),
        ("10.0 < avg([10.0, 10.0]) + 0%", 10.0, "<+0%", "avg", False),
        ("10.0 > avg([10.0, 10.0]) + 0%", 10.0, ">+0%", "avg", False),
        ("11.0 = avg([10.0, 10.0]) + 1.0", 11.0, "=+1", "avg", True),
        ("9.0 = avg([10.0, 10.0]) - 1.0", 9.0, "=-1", "avg", True),
        ("10.0 <= p50([10.0, 10.0]) + 10.0%", 10.0, "<=+10%", "p50", True),
        ("10.0 >= p50([10.0, 10.0]) - 10.0%", 10.0, ">=-10%", "p50", True),
    ],
)
def test_evaluate_single_criteria(
    name: str, measured: float, criteria: str, function: str, satisfied: bool
) -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateSingleCriteria / TestEvaluateComparison."""
    assert (
        evaluate_criterion(criteria, measured, _agg([10.0, 10.0], function)).satisfied is satisfied
    )


def test_evaluate_single_criteria_without_previous() -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateSingleCriteria 'Expect true for 10.0 <= 10.0'."""
    assert evaluate_criterion("<=10", 10.0, None).satisfied


def test_relative_criterion_without_usable_previous_value_passes_with_target_zero() -> None:
    """lighthouse evaluate_sli_handler.go evaluateComparison: skip => true, TargetValue unset (0)."""
    outcome = evaluate_criterion("<=+10%", 1e9, None)
    assert (outcome.satisfied, outcome.target_value, outcome.compared_value) == (True, 0.0, 0.0)


@pytest.mark.parametrize(
    ("criteria", "aggregated", "target"),
    [
        ("<=+10%", 200.0, 220.0),
        ("<=-10%", 200.0, 180.0),
        ("<=+10", 200.0, 210.0),
        ("<=-10", 200.0, 190.0),
        ("<=10%", 200.0, 220.0),
    ],
)
def test_relative_targets(criteria: str, aggregated: float, target: float) -> None:
    """lighthouse evaluate_sli_handler.go evaluateComparison: the four target formulas."""
    assert evaluate_criterion(criteria, 0.0, aggregated).target_value == target


# --- evaluateCriteriaSet / evaluateOrCombinedCriteria ----------------------------------


@pytest.mark.parametrize(
    ("measured", "satisfied", "targets"),
    [
        (10.0, True, (Target("<=+10%", 11, False), Target("<=10.0", 10, False))),
        (11.0, False, (Target("<=+10%", 11, False), Target("<=10.0", 10, True))),
    ],
)
def test_evaluate_criteria_set(
    measured: float, satisfied: bool, targets: tuple[Target, ...]
) -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateCriteriaSet: AND within one item."""
    result = evaluate_criteria_sets(_sets(("<=+10%", "<=10.0")), measured, _agg([10.0, 10.0]))
    assert result == (satisfied, targets)


@pytest.mark.parametrize(
    ("measured", "satisfied", "violated"),
    [(10.0, True, (False, False)), (11.0, True, (True, False)), (20.0, False, (True, True))],
)
def test_evaluate_or_combined_criteria(
    measured: float, satisfied: bool, violated: tuple[bool, bool]
) -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateOrCombinedCriteria: OR between items."""
    result = evaluate_criteria_sets(_sets(("<=10.0",), ("<=+10%",)), measured, _agg([10.0, 10.0]))
    expected = (Target("<=10.0", 10.0, violated[0]), Target("<=+10%", 11.0, violated[1]))
    assert result == (satisfied, expected)


# --- evaluateObjectives ----------------------------------------------------------------


def _objectives_slo(*objectives: Objective, comparison: Comparison = SEVERAL_PASS_2_AVG) -> SLO:
    return SLO("1.0", comparison=comparison, objectives=objectives, total_score=TOTAL_90_75)


PREVIOUS_10 = _prev("pass", ("my-test-metric-1", 10.0, True))


def test_evaluate_objectives_simple_comparison() -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateObjectives 'Simple comparison evaluation'."""
    outcome = evaluate_objectives(
        _objectives_slo(METRIC_1), [_value("my-test-metric-1", 10.0)], [PREVIOUS_10]
    )
    assert outcome.indicator_results == (
        ScoredIndicator(
            score=1.0,
            value=SLIValue("my-test-metric-1", 10.0, 10.0, True),
            status="pass",
            pass_targets=(Target("<=15.0", 15, False), Target("<=+10%", 11, False)),
            warning_targets=(Target("<=20.0", 20, False), Target("<=+15%", 11.5, False)),
        ),
    )
    assert (outcome.maximum_achievable_score, outcome.key_sli_failed) == (1.0, False)


def test_evaluate_objectives_expect_warning() -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateObjectives 'Expect Warning': 0.5·weight."""
    outcome = evaluate_objectives(
        _objectives_slo(METRIC_1), [_value("my-test-metric-1", 16.0)], [PREVIOUS_10]
    )
    assert outcome.indicator_results == (
        ScoredIndicator(
            score=0.5,
            value=SLIValue("my-test-metric-1", 16.0, 10.0, True),
            status="warning",
            pass_targets=(Target("<=15.0", 15, True), Target("<=+10%", 11, True)),
            warning_targets=(Target("<=20.0", 20, False), Target("<=+15%", 11.5, True)),
        ),
    )


@pytest.mark.parametrize("empty", [False, True])
def test_info_objective_does_not_count(empty: bool) -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateObjectives 'Logging SLI with no pass
    criteria should not affect score' and '... empty pass criteria array ... - BUG 2231'."""
    extra = "  pass: []\n  warning: []\n" if empty else ""
    slo = parse_slo(
        "comparison: {compare_with: several_results, include_result_with_score: pass,"
        " number_of_comparison_results: 2}\n"
        "objectives:\n- sli: my-test-metric-1\n  pass: [{criteria: ['<=15.0']}, "
        "{criteria: ['<=+10%']}]\n  warning: [{criteria: ['<=20.0']}, {criteria: ['<=+15%']}]\n"
        "- sli: my-log-metric\n" + extra
    )
    values = [_value("my-test-metric-1", 10.0), _value("my-log-metric", 30.0)]
    outcome = evaluate_objectives(slo, values, [PREVIOUS_10])
    assert outcome.indicator_results is not None
    assert outcome.indicator_results[1] == ScoredIndicator(
        0.0, SLIValue("my-log-metric", 30.0, 0.0, True), "info"
    )
    assert outcome.maximum_achievable_score == 1.0


def test_evaluate_objectives_bug_1125_no_previous_results() -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateObjectives 'BUG 1125'."""
    objective = Objective("response_time_p50", pass_criteria=_sets(("<=+20%", "<500")))
    outcome = evaluate_objectives(
        _objectives_slo(objective), [_value("response_time_p50", 1011.0745528937252)], []
    )
    assert outcome.indicator_results == (
        ScoredIndicator(
            score=0.0,
            value=SLIValue("response_time_p50", 1011.0745528937252, 0.0, True),
            status="fail",
            pass_targets=(Target("<=+20%", 0, False), Target("<500", 500, True)),
        ),
    )


def test_evaluate_objectives_bug_1263_failed_previous_value_is_ignored() -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateObjectives 'BUG 1263'."""
    objective = Objective("response_time_p50", pass_criteria=_sets(("<=+20%",)))
    previous = _prev("pass", ("response_time_p50", 0.0, False))
    slo = _objectives_slo(objective, comparison=Comparison("single_result", "pass", 1, "avg"))
    outcome = evaluate_objectives(slo, [_value("response_time_p50", 100.0)], [previous])
    assert outcome.indicator_results == (
        ScoredIndicator(
            score=1.0,
            value=SLIValue("response_time_p50", 100.0, 0.0, True),
            status="pass",
            pass_targets=(Target("<=+20%", 0, False),),
        ),
    )


def test_missing_value_and_leftover_hint() -> None:
    """lighthouse evaluate_sli_handler_test.go TestEvaluateObjectives '6096 if SLI does not have
    objective have a message'; targets as evaluate_sli_handler.go getEmptyTargets (PR #9194)
    fills them: every target violated, relative ones at the bare aggregate (here none: 0)."""
    objective = Objective(
        "a_different_metric",
        pass_criteria=METRIC_1.pass_criteria,
        warning_criteria=METRIC_1.warning_criteria,
    )
    outcome = evaluate_objectives(
        _objectives_slo(objective), [_value("my-test-metric-1", 10.0)], [PREVIOUS_10]
    )
    assert outcome.indicator_results == (
        ScoredIndicator(
            score=0.0,
            value=SLIValue("a_different_metric", 0.0, 0.0, False, NO_VALUE_MESSAGE),
            status="fail",
            pass_targets=(Target("<=15.0", 15, True), Target("<=+10%", 0, True)),
            warning_targets=(Target("<=20.0", 20, True), Target("<=+15%", 0, True)),
        ),
    )
    assert outcome.message == (
        "Lighthouse received additional SLIs, which are not specified as SLO: "
        "my-test-metric-1 . Please consider using them as an SLO."
    )
    assert outcome.maximum_achievable_score == 1.0


def test_missing_value_placeholder_targets_use_aggregate_and_skip_bad_criteria() -> None:
    """lighthouse evaluate_sli_handler.go getEmptyTargets / criteriaObject.getTargetValue."""
    objective = Objective("m", pass_criteria=_sets(("<=+10%", "bogus", "<5")))
    outcome = evaluate_objectives(
        _objectives_slo(objective), [], [_prev("pass", ("m", 40.0, True))]
    )
    assert outcome.indicator_results is not None
    result = outcome.indicator_results[0]
    assert result.pass_targets == (Target("<=+10%", 40.0, True), Target("<5", 5.0, True))
    assert result.warning_targets == ()  # [] rather than null
    assert result.to_keptn()["warningTargets"] == []


def test_missing_key_sli_value_does_not_count_as_key_sli_failure() -> None:
    """lighthouse evaluate_sli_handler.go evaluateObjectives: the no-value branch neither copies
    key_sli nor sets keySLIFailed, so only the score can fail the evaluation."""
    key = Objective("key", pass_criteria=_sets(("<5",)), key_sli=True)
    other = Objective("other", pass_criteria=_sets(("<5",)))
    slo = SLO(objectives=(key, other), total_score=TotalScore("50%"))
    evaluation = evaluate(slo, [_value("other", 1.0)])
    assert (evaluation.result, evaluation.details.score) == ("pass", 50.0)
    assert evaluation.details.indicator_results is not None
    assert evaluation.details.indicator_results[0].key_sli is False


def test_each_sli_value_is_consumed_once() -> None:
    """lighthouse evaluate_sli_handler_test.go Test_getSLIResult + evaluateObjectives: a second
    objective on the same SLI gets "no value received from SLI provider"."""
    first = Objective("rt", pass_criteria=_sets(("<100",)))
    second = Objective("rt", display_name="again", pass_criteria=_sets(("<100",)))
    outcome = evaluate_objectives(_objectives_slo(first, second), [_value("rt", 50.0)], [])
    assert outcome.indicator_results is not None
    assert [r.status for r in outcome.indicator_results] == ["pass", "fail"]
    assert outcome.indicator_results[1].value.message == NO_VALUE_MESSAGE


@pytest.mark.parametrize(
    ("sli", "values", "found", "left"),
    [
        ("not_this_metric", ["response_time_p50"], False, ["response_time_p50"]),
        ("response_time_p50", ["response_time_p50"], True, []),
        ("response_time_p50", ["response_time_p50", "wrong_metric"], True, ["wrong_metric"]),
        ("response_time_p50", ["wrong_metric", "response_time_p50"], True, ["wrong_metric"]),
        ("a", ["a", "b", "c"], True, ["c", "b"]),  # the last element fills the gap
    ],
)
def test_get_sli_result(sli: str, values: list[str], found: bool, left: list[str]) -> None:
    """lighthouse evaluate_sli_handler_test.go Test_getSLIResult (none found / none left / one sli
    left / found last) and getSLIResult's swap-with-last removal."""
    remaining = [_value(name, 100.0) for name in values]
    assert (take_indicator(remaining, sli) is not None) is found
    assert [item.metric for item in remaining] == left


def test_leftover_hint_lists_remaining_slis_in_lighthouse_order() -> None:
    """lighthouse evaluate_sli_handler.go checkLeftoverSLI after getSLIResult's removals."""
    slo = _objectives_slo(Objective("a", pass_criteria=_sets(("<1",))))
    outcome = evaluate_objectives(slo, [_value(n, 0.0) for n in ("a", "b", "c")], [])
    assert "not specified as SLO: c, b . Please" in outcome.message


def test_failed_value_fails_the_objective_and_the_key_sli() -> None:
    """lighthouse issue #9494 / PR #9495 (keptn 1.2): success=false fails that objective (score 0,
    targets violated) instead of the whole evaluation; an objective without pass criteria stays
    info. Targets at 0 as evaluate_sli_handler.go reported them before 1.0."""
    key = Objective(
        "rt", pass_criteria=_sets(("<100",)), warning_criteria=_sets(("<200",)), key_sli=True
    )
    info = Objective("log")
    slo = SLO(objectives=(key, info), total_score=TOTAL_90_75)
    values = [_value("rt", 0.0, False, "query failed"), _value("log", 0.0, False)]
    evaluation = evaluate(slo, values, get_sli_result="warning")
    assert evaluation.details.indicator_results == (
        ScoredIndicator(
            score=0.0,
            value=SLIValue("rt", 0.0, 0.0, False, "query failed"),
            status="fail",
            pass_targets=(Target("<100", 0.0, True),),
            warning_targets=(Target("<200", 0.0, True),),
            key_sli=True,
        ),
        ScoredIndicator(0.0, SLIValue("log", 0.0, 0.0, False), "info"),
    )
    assert (evaluation.result, evaluation.status) == ("fail", "succeeded")


def test_compared_value_is_reported_for_fixed_criteria_too() -> None:
    """lighthouse evaluate_sli_handler.go evaluateSingleCriteria: aggregate stored for Bridge."""
    slo = _objectives_slo(Objective("m", pass_criteria=_sets(("<500",))))
    outcome = evaluate_objectives(slo, [_value("m", 100.0)], [_prev("pass", ("m", 300.0, True))])
    assert outcome.indicator_results is not None
    assert outcome.indicator_results[0].value.compared_value == 300.0


# --- calculateScore --------------------------------------------------------------------


def _with_score(score: float) -> ScoredIndicator:
    return ScoredIndicator(score, SLIValue("m", 10.0, 0.0, True), "pass")


@pytest.mark.parametrize(
    ("name", "maximum", "scores", "key_failed", "result", "score", "message"),
    [
        ("Simple comparison", 1, [1], False, "pass", 100.0, None),
        (
            "Key SLI failed",
            2,
            [1, 0],
            True,
            "fail",
            50.0,
            "Evaluation failed since the calculated score of 50 is below the target value of 90",
        ),
        (
            "Non-Key SLI warning",
            2,
            [1, 0.506],
            False,
            "warning",
            75.3,
            "Evaluation returned a warning: the calculated score of 75.3 is close to the warning "
            "target value of 75",
        ),
        (
            "Non-Key SLI fail",
            2,
            [1, 0.48],
            False,
            "fail",
            74.0,
            "Evaluation failed since the calculated score of 74 is below the warning value of 75",
        ),
        ("Only Info SLIs", 0, [1, 1], True, "pass", 100.0, None),
    ],
)
def test_calculate_score(
    name: str,
    maximum: float,
    scores: list[float],
    key_failed: bool,
    result: str,
    score: float,
    message: str | None,
) -> None:
    """lighthouse evaluate_sli_handler_test.go TestCalculateScore (all five cases)."""
    outcome = calculate_score(maximum, [_with_score(s) for s in scores], TOTAL_90_75, key_failed)
    assert (outcome.result, outcome.score, outcome.message) == (result, score, message)


def test_key_sli_failure_fails_even_above_the_pass_target() -> None:
    """lighthouse evaluate_sli_handler.go calculateScore: `achieved >= pass && !keySLIFailed`."""
    outcome = calculate_score(10, [_with_score(9.5)], TOTAL_90_75, True)
    assert outcome.result == "fail"
    assert outcome.message is not None and "below the target value of 90" in outcome.message


def test_fail_below_pass_without_warning_target() -> None:
    """lighthouse evaluate_sli_handler.go calculateScore: no warning target => fail."""
    outcome = calculate_score(2, [_with_score(1)], TotalScore("90%"), False)
    assert (outcome.result, outcome.score) == ("fail", 50.0)


@pytest.mark.parametrize(
    ("total", "error"),
    [
        (None, "no target score defined"),
        (TotalScore("", "75%"), "no target score defined"),
        (TotalScore("ninety%"), "could not parse pass target percentage"),
        (TotalScore("90 %"), "could not parse pass target percentage"),
        (TotalScore("90%", "high"), "could not parse warning target percentage"),
    ],
)
def test_total_score_errors(total: TotalScore | None, error: str) -> None:
    """lighthouse evaluate_sli_handler.go calculateScore: checked before scoring, even when the
    maximum score is 0 (keptn 1.x order)."""
    with pytest.raises(ScoringError, match=f"^{error}$"):
        calculate_score(0, [], total, False)


def test_weights_scale_scores() -> None:
    """lighthouse evaluate_sli_handler.go evaluateObjectives/calculateScore: pass scores the
    weight, warning half of it, and 0/missing weights count 1 (common.go parseSLO)."""
    slo = parse_slo(
        "objectives:\n"
        "- {sli: a, weight: 4, pass: [{criteria: ['<1']}], warning: [{criteria: ['<2']}]}\n"
        "- {sli: b, weight: 0, pass: [{criteria: ['<1']}]}\n"
        "- {sli: c, pass: [{criteria: ['<1']}]}\n"
        "total_score: {pass: '90%', warning: '50%'}\n"
    )
    evaluation = evaluate(slo, [_value("a", 1.5), _value("b", 0.0), _value("c", 5.0)])
    assert evaluation.details.indicator_results is not None
    assert [r.score for r in evaluation.details.indicator_results] == [2.0, 1.0, 0.0]
    assert evaluation.details.score == 50.0  # 3 of 6
    assert evaluation.result == "warning"


# --- parseSLO --------------------------------------------------------------------------

RESPONSE_TIME = Objective(
    "responseTime95",
    pass_criteria=_sets(("<=+10%",), ("<200",)),
    warning_criteria=_sets(("<+15%", ">-8%", "<500")),
)
SECURITY = Objective("security_vulnerabilities", pass_criteria=_sets(("=0",)), weight=2)
SQL = Objective(
    "sql_statements",
    pass_criteria=_sets(("=0%",), ("<100",)),
    warning_criteria=_sets(("<+5%", ">-5%")),
    key_sli=True,
)
OBJECTIVES_YAML = """
objectives:
  - sli: responseTime95
    pass:
      - criteria: ["<=+10%"]
      - criteria: ["<200"]
    warning:
      - criteria: ["<+15%", ">-8%", "<500"]
  - null
  - sli: security_vulnerabilities
    weight: 2
    pass:
      - criteria: ["=0"]
  - sli: sql_statements
    key_sli: true
    pass:
      - criteria: ["=0%"]
      - criteria: ["<100"]
    warning:
      - criteria: ["<+5%", ">-5%"]
total_score:
  pass: "90%"
  warning: 75%
"""


@pytest.mark.parametrize(
    ("name", "comparison_yaml", "expected"),
    [
        (
            "Simple SLO file",
            "comparison: {compare_with: single_result, include_result_with_score: pass,"
            " number_of_comparison_results: 3, aggregate_function: avg}",
            Comparison("single_result", "pass", 3, "avg"),
        ),
        ("Simple SLO file without comparison spec", "", DEFAULT_COMPARISON),
        (
            "Simple SLO file (comparison with compare_with only)",
            "comparison: {compare_with: single_result}",
            Comparison("single_result", "all", 3, "avg"),
        ),
    ],
)
def test_parse_slo(name: str, comparison_yaml: str, expected: Comparison) -> None:
    """lighthouse common_test.go TestParseLO: defaults, null objectives dropped, weight 0 => 1."""
    slo = parse_slo(
        "---\nspec_version: '1.0'\nfilter:\n  id: '<prometheus_scrape_job_id>'\n"
        + comparison_yaml
        + OBJECTIVES_YAML
    )
    assert slo == SLO(
        spec_version="1.0",
        filter={"id": "<prometheus_scrape_job_id>"},
        comparison=expected,
        objectives=(RESPONSE_TIME, SECURITY, SQL),
        total_score=TOTAL_90_75,
    )


def test_parse_slo_issue_6096_file() -> None:
    """lighthouse common_test.go TestParseLO 'Issue 6096 SLO file'."""
    slo = parse_slo(
        'spec_version: ""\nfilter: {}\ncomparison:\n  compare_with: single_result\n'
        "  include_result_with_score: pass\n  number_of_comparison_results: 1\n"
        '  aggregate_function: avg\nobjectives:\n- null\n- sli: srt\n  displayName: ""\n'
        "  pass: []\n  warning: []\n  weight: 1\n  key_sli: false\n"
        "total_score:\n  pass: 90%\n  warning: 75%\n"
    )
    assert slo == SLO(
        comparison=Comparison("single_result", "pass", 1, "avg"),
        objectives=(Objective("srt"),),
        total_score=TOTAL_90_75,
    )


def test_parse_slo_accepts_a_mapping_and_keeps_scalars_as_text() -> None:
    """lighthouse common.go parseSLO via yaml.v3: scalars land in string fields as their text."""
    slo = parse_slo(
        {"objectives": [{"sli": "a", "pass": [{"criteria": ["<5"]}]}], "total_score": {"pass": 90}}
    )
    assert slo.total_score == TotalScore("90", "")
    assert slo.objectives == (Objective("a", pass_criteria=_sets(("<5",))),)


def test_parse_slo_uses_yaml_1_2_booleans() -> None:
    """lighthouse common.go parseSLO decodes with gopkg.in/yaml.v3: `on`/`no` stay text in string
    fields, while a bool field (key_sli) still accepts yes/no."""
    slo = parse_slo("objectives: [{sli: on, displayName: no, key_sli: yes}]")
    assert slo.objectives == (Objective("on", "no", key_sli=True),)


@pytest.mark.parametrize(
    "document",
    [
        "objectives: [{sli: a, weight: heavy}]",
        "objectives: {sli: a}",
        "- just a list",
        "a: [b",
        "objectives: [{sli: a, pass: [{criteria: [{x: 1}]}]}]",
        "objectives: [{sli: a, key_sli: 1}]",
    ],
)
def test_parse_slo_errors(document: str) -> None:
    """lighthouse common.go GetSLOs: a decoding error is "Could not parse SLO file ..."."""
    with pytest.raises(SLOParseError):
        parse_slo(document)


# --- previous results: datastore selection --------------------------------------------

HISTORY = (
    _prev("fail", event_id="1"),
    _prev("warning", event_id="2"),
    _prev("pass", event_id="3"),
    PreviousEvaluation(id="4", result="pass", invalidated=True),
    _prev("pass", event_id="5"),
    _prev("warning", event_id="6"),
    _prev("pass", event_id="7"),
)


@pytest.mark.parametrize(
    ("comparison", "ids"),
    [
        (Comparison("single_result", "all", 5, "avg"), ["1"]),
        (Comparison("several_results", "all", 3, "avg"), ["1", "2", "3"]),
        (Comparison("several_results", "pass", 3, "avg"), ["3", "5", "7"]),
        (Comparison("several_results", "pass_or_warn", 3, "avg"), ["2", "3", "5"]),
        (Comparison("several_results", "PASS", 1, "avg"), ["3"]),  # lower-cased
        (Comparison("several_results", "pass_or_warning", 2, "avg"), ["1", "2"]),  # no filter
        (Comparison("", "all", 1, "avg"), ["1", "2", "3"]),  # neither mode: 3
        (Comparison("several_results", "all", -1, "avg"), ["1", "2", "3", "5", "6", "7"]),
    ],
)
def test_select_previous(comparison: Comparison, ids: list[str]) -> None:
    """lighthouse evaluate_sli_handler.go getPreviousEvaluations (limit 1 / N / 3, result filter)
    + mongodb-datastore events.go getAggregationPipeline (invalidated dropped, newest first,
    limit only when > 0) and parseFilter ("pass,warning" => $in)."""
    assert [item.id for item in select_previous(HISTORY, comparison)] == ids


def test_include_result_with_score_filters_what_is_aggregated() -> None:
    """lighthouse evaluate_sli_handler.go getPreviousEvaluations: the filter acts on whole events
    (issue #2388), then aggregateValues averages the selected events' successful values."""
    history = [_prev("fail", ("m", 1000.0, True)), _prev("pass", ("m", 10.0, True))]
    slo = SLO(
        comparison=Comparison("several_results", "pass", 2, "avg"),
        objectives=(Objective("m", pass_criteria=_sets(("<=+10%",))),),
        total_score=TOTAL_90_75,
    )
    evaluation = evaluate(slo, [_value("m", 10.5)], history)
    assert evaluation.details.indicator_results is not None
    assert evaluation.details.indicator_results[0].pass_targets == (Target("<=+10%", 11.0, False),)
    assert evaluation.result == "pass"


# --- evaluate(): the whole handler -----------------------------------------------------


def _stored_event() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (CASES / "lighthouse_stored_evaluation_finished.json").read_text()
    )
    return loaded


def test_reproduces_a_stored_lighthouse_evaluation() -> None:
    """lighthouse main_test.go mongoDBGetByTypeContent: the evaluation.finished lighthouse stored for
    qualityGatesShortSLOFileContent, recomputed from its own values and previous values."""
    stored = _stored_event()
    slo_text = (CASES / "quality_gates_short_slo.yaml").read_text().rstrip("\n")
    previous = PreviousEvaluation.from_keptn(stored)  # same values, so the same aggregates
    values = [
        {"metric": "response_time_p95", "value": 200, "success": True},
        {"metric": "throughput", "value": 200, "success": True},
        {"metric": "error_rate", "value": 0, "success": True},
    ]
    evaluation = evaluate(
        slo_text,
        values,
        [previous],
        time_start="2022-01-26T10:05:53.931Z",
        time_end="2022-01-26T10:10:53.931Z",
        slo_file_content=slo_text,
    )
    expected = dict(stored["data"]["evaluation"], comparedEvents=[stored["id"]])
    assert evaluation.to_keptn() == {
        "result": "pass",
        "status": "succeeded",
        "evaluation": expected,
    }


def test_sli_provider_errored() -> None:
    """lighthouse main_test.go Test_ErroredFinishedPayloadSend."""
    evaluation = evaluate(
        CASES.joinpath("quality_gates_short_slo.yaml").read_text(),
        [],
        get_sli_status="errored",
        get_sli_result="pass",
        get_sli_message="some-silly-msg",
    )
    assert (evaluation.status, evaluation.result, evaluation.message) == (
        "errored",
        "fail",
        "evaluation performed by lighthouse received an unexpected error: some-silly-msg",
    )
    assert evaluation.errored
    assert evaluation.details.result == "pass"  # pre-filled by lighthouse, never updated


def test_sli_provider_aborted() -> None:
    """lighthouse main_test.go Test_AbortedFinishedPayloadSend."""
    evaluation = evaluate("not: [valid", [], get_sli_status="aborted", get_sli_message="x")
    assert (evaluation.status, evaluation.result, evaluation.message) == (
        "errored",
        "fail",
        "evaluation performed by lighthouse was aborted",
    )


def test_sli_provider_result_fail() -> None:
    """lighthouse main_test.go Test_SLIFailResultSend (quality-gates SLO, no indicator values,
    the stored evaluation as history)."""
    evaluation = evaluate(
        (CASES / "quality_gates_short_slo.yaml").read_text(),
        [],
        [PreviousEvaluation.from_keptn(_stored_event())],
        get_sli_result="fail",
        get_sli_message="some-silly-msg",
    )
    assert (evaluation.status, evaluation.result, evaluation.message) == (
        "succeeded",
        "fail",
        "lighthouse failed because SLI failed with message some-silly-msg",
    )


def test_sli_result_fail_still_scores() -> None:
    """lighthouse issue #9198's payload + evaluate_sli_handler.go processGetSliFinishedEvent: the
    SLO is scored first, then only data.result and data.message are overridden."""
    slo = SLO(objectives=(Objective("info-only"),), total_score=TOTAL_90_75)
    evaluation = evaluate(slo, [_value("info-only", 1.0)], get_sli_result="fail")
    assert evaluation.result == "fail"
    assert (evaluation.details.result, evaluation.details.score) == ("pass", 100.0)


def test_no_slo_objectives() -> None:
    """lighthouse main_test.go Test_NoSLOObjectives (noObjectivesSLOFileContent, get-sli fail)."""
    evaluation = evaluate(
        (CASES / "no_objectives_slo.yaml").read_text(),
        [
            {
                "message": "no SLIs were requested",
                "metric": "no metric",
                "success": False,
                "value": 0,
            }
        ],
        get_sli_result="fail",
        get_sli_message="no SLIs were requested",
    )
    assert (evaluation.status, evaluation.result, evaluation.message) == (
        "succeeded",
        "fail",
        "lighthouse failed because no SLO objective was provided",
    )
    assert (evaluation.details.score, evaluation.details.indicator_results) == (0.0, None)


def test_only_info_objectives_pass_with_100() -> None:
    """lighthouse evaluate_sli_handler_test.go TestCalculateScore 'Only Info SLIs', end to end."""
    slo = SLO(objectives=(Objective("a"), Objective("b")), total_score=TOTAL_90_75)
    evaluation = evaluate(slo, [_value("a", 1.0), _value("b", 2.0)])
    assert (evaluation.result, evaluation.details.score, evaluation.message) == ("pass", 100.0, "")


def test_missing_total_score_is_an_errored_evaluation() -> None:
    """lighthouse evaluate_sli_handler.go processGetSliFinishedEvent: a calculateScore error goes
    to sendErroredFinishedEventWithMessage (which reports the raw slo.yaml text)."""
    text = "objectives: [{sli: a, pass: [{criteria: ['<5']}]}]\n"
    evaluation = evaluate(text, [_value("a", 1.0)], slo_file_content=text)
    assert evaluation.to_keptn() == {
        "result": "fail",
        "status": "errored",
        "message": "no target score defined",
        "evaluation": {
            "timeStart": "",
            "timeEnd": "",
            "result": "fail",
            "score": 0.0,
            "indicatorResults": None,
            "sloFileContent": text,
        },
    }


@pytest.mark.parametrize(
    ("display_name", "criteria", "message"),
    [
        ("Response time", "500", "error with Response time: invalid criteria string"),
        ("", "<fast", "error with rt: could not parse criteria target value"),
    ],
)
def test_unparseable_pass_criteria_fail_the_evaluation(
    display_name: str, criteria: str, message: str
) -> None:
    """lighthouse evaluate_sli_handler.go evaluateObjectives (PR #9206, issue #9207): the first
    pass criterion that cannot be parsed fails the evaluation, named by displayName or sli."""
    slo = SLO(
        objectives=(Objective("rt", display_name, pass_criteria=_sets(("<1000", criteria))),),
        total_score=TOTAL_90_75,
    )
    evaluation = evaluate(slo, [_value("rt", 1.0)], slo_file_content="x")
    assert (evaluation.status, evaluation.result, evaluation.message) == (
        "succeeded",
        "fail",
        message,
    )
    assert evaluation.details == evaluation.details.__class__(
        "", "", "fail", 0.0, None, (), encode_slo_file("x")
    )


def test_unparseable_warning_criteria_are_ignored() -> None:
    """lighthouse evaluate_sli_handler.go evaluateObjectives: warning errors are dropped, the
    warning is unsatisfied and its targets are [] (evaluateOrCombinedCriteria on error)."""
    objective = Objective(
        "rt", pass_criteria=_sets(("<10",)), warning_criteria=_sets(("<20", "??"))
    )
    evaluation = evaluate(
        SLO(objectives=(objective,), total_score=TOTAL_90_75), [_value("rt", 15.0)]
    )
    assert evaluation.details.indicator_results is not None
    result = evaluation.details.indicator_results[0]
    assert (result.status, result.warning_targets) == ("fail", ())
    assert evaluation.result == "fail"


def test_leftover_hint_survives_a_pass_but_not_a_warning() -> None:
    """lighthouse evaluate_sli_handler.go: checkLeftoverSLI appends to the message, calculateScore
    overwrites it for warning and fail results."""
    slo = SLO(objectives=(Objective("a", pass_criteria=_sets(("<5",))),), total_score=TOTAL_90_75)
    passed = evaluate(slo, [_value("a", 1.0), _value("extra", 1.0)])
    assert passed.message.startswith("Lighthouse received additional SLIs")
    failed = evaluate(slo, [_value("a", 9.0), _value("extra", 1.0)])
    assert failed.message.startswith("Evaluation failed since the calculated score of 0")


def test_unparseable_slo_is_an_errored_evaluation() -> None:
    """lighthouse common.go GetSLOs: "Could not parse SLO file ..." sent as errored."""
    evaluation = evaluate("objectives: {oops: 1}", [])
    assert (evaluation.status, evaluation.result) == ("errored", "fail")
    assert evaluation.message.startswith("Could not parse SLO file")


def test_unparseable_payload_is_an_errored_evaluation() -> None:
    """lighthouse evaluate_sli_handler.go HandleEvent: "Could not parse event payload: ..."."""
    evaluation = evaluate("objectives: []", [{"metric": "a", "value": "12"}])
    assert (evaluation.status, evaluation.result) == ("errored", "fail")
    assert evaluation.message.startswith("Could not parse event payload")


def test_previous_evaluation_from_keptn_skips_entries_without_value() -> None:
    """lighthouse evaluate_sli_handler.go evaluateObjectives: `if prevSLIResult.Value == nil`."""
    event = {"result": "pass", "evaluation": {"indicatorResults": [{"status": "pass"}]}}
    assert PreviousEvaluation.from_keptn(event) == PreviousEvaluation("", "pass")


# --- Go number formatting and parsing used in messages and targets -----------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (50.0, "50"),
        (75.3, "75.3"),
        (100 * (2 / 3), "66.66666666666666"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (0.00001, "1e-05"),
        (-0.5, "-0.5"),
    ],
)
def test_scores_are_printed_like_go_percent_v(value: float, text: str) -> None:
    """lighthouse evaluate_sli_handler.go calculateScore formats scores with fmt %v."""
    assert format_float(value) == text


@pytest.mark.parametrize(
    ("text", "value"), [("90", 90.0), ("1e2", 100.0), (".5", 0.5), ("inf", math.inf)]
)
def test_targets_are_parsed_like_go_parse_float(text: str, value: float) -> None:
    """lighthouse evaluate_sli_handler.go calculateScore / parseCriteriaString use strconv.ParseFloat."""
    assert parse_float(text) == value
