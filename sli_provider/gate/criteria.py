"""Criteria strings and their evaluation against a value and earlier values.

Mirrors lighthouse-service/event_handler/evaluate_sli_handler.go (keptn 1.x):
``parseCriteriaString``, ``evaluateValue``, ``evaluateSingleCriteria``, ``evaluateComparison``,
``aggregateValues``, ``calculateAverage`` and ``calculatePercentile``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sli_provider.errors import SliProviderError
from sli_provider.gate.gonum import parse_float


class CriteriaError(SliProviderError, ValueError):
    """A criterion lighthouse cannot evaluate; ``str()`` is lighthouse's error text."""


@dataclass(frozen=True)
class Criterion:
    operator: str  # one of <=, <, =, >=, >
    value: float
    check_percentage: bool  # trailing %
    is_comparison: bool  # relative to the aggregated previous value
    check_increase: bool  # + (or a bare %) rather than -


# Lighthouse's regex, kept verbatim: the brackets make it a character class, so it only
# demands one or two of the characters <|=> up front; everything else is decided below.
_PREFIX = re.compile(r"^([<|<=|=|>|>=]{1,2})([+|-]{0,1}\d*\.?\d*)([%]{0,1})")
# Order matters: "<=" must be tried before "<", ">=" after "=" (as in lighthouse).
_OPERATORS = ("<=", "<", "=", ">=", ">")


def parse_criteria(criteria: str) -> Criterion:
    """``parseCriteriaString``: e.g. ``<=+10%``, ``<500``, ``>-8%``, ``=0``."""
    text = criteria.replace(" ", "")  # only spaces are removed, not tabs or newlines
    if not _PREFIX.match(text):
        raise CriteriaError("invalid criteria string")
    operator = ""
    for candidate in _OPERATORS:
        if text.startswith(candidate):
            operator = candidate
            text = text[len(candidate) :]
            break
    check_percentage = is_comparison = check_increase = False
    if text.endswith("%"):
        # Issue #1498: a percentage is always relative, and an unsigned one counts as "+".
        check_percentage = is_comparison = check_increase = True
        text = text[:-1]
    if text.startswith("-"):
        is_comparison, check_increase = True, False
        text = text[1:]
    elif text.startswith("+"):
        is_comparison, check_increase = True, True
        text = text[1:]
    try:
        value = parse_float(text)
    except ValueError:
        raise CriteriaError("could not parse criteria target value") from None
    return Criterion(operator, value, check_percentage, is_comparison, check_increase)


def compare(measured: float, operator: str, expected: float) -> bool:
    """``evaluateValue``."""
    if operator == "<":
        return measured < expected
    if operator == "<=":
        return measured <= expected
    if operator == "=":
        return measured == expected
    if operator == ">=":
        return measured >= expected
    if operator == ">":
        return measured > expected
    raise CriteriaError("no operator set")


def relative_target(criterion: Criterion, aggregated: float) -> float:
    """The comparison value of a relative criterion (``evaluateComparison``)."""
    # Same operation order as Go, so the float results are bit-identical.
    if criterion.check_percentage and criterion.check_increase:
        return (aggregated * (100.0 + criterion.value)) / 100.0
    if criterion.check_percentage:
        return (aggregated * (100.0 - criterion.value)) / 100.0
    if criterion.check_increase:
        return aggregated + criterion.value
    return aggregated - criterion.value


def average(values: Sequence[float]) -> float:
    # Summed left to right like Go (Python 3.12's sum() compensates and could differ).
    total = 0.0
    for value in values:
        total += value
    return total / len(values) if values else 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """``calculatePercentile``: linear interpolation at rank fraction·(n+1), 1-based, clamped."""
    if not values:
        return 0.0
    ordered = sorted(values)
    size = len(ordered)
    position = fraction * float(size + 1)
    if position < 1.0:
        return ordered[0]
    if position >= float(size):
        return ordered[-1]
    lower = ordered[int(position) - 1]
    upper = ordered[int(position)]
    return lower + (position - math.floor(position)) * (upper - lower)


_PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95}


def aggregate(values: Sequence[float], function: str) -> float:
    """The aggregate_function switch; an unknown function yields 0 (not an error)."""
    if function == "avg":
        return average(values)
    if function in _PERCENTILES:
        return percentile(values, _PERCENTILES[function])
    return 0.0


def aggregate_previous(values: Sequence[float], function: str) -> float | None:
    """``aggregateValues``: None when there is nothing to compare with (lighthouse's "skip").

    ``values`` are the earlier values that were retrieved successfully; lighthouse drops
    ``success: false`` entries before aggregating.
    """
    if not values:
        return None
    return aggregate(values, function)


@dataclass(frozen=True)
class CriterionResult:
    satisfied: bool
    target_value: float  # what lighthouse reports as targetValue
    compared_value: float  # what lighthouse writes into value.comparedValue


def evaluate_criterion(
    criteria: str, measured: float, aggregated_previous: float | None
) -> CriterionResult:
    """``evaluateSingleCriteria`` for a successfully retrieved value.

    ``aggregated_previous`` comes from :func:`aggregate_previous`. Raises CriteriaError for an
    unparseable criterion.
    """
    criterion = parse_criteria(criteria)
    # Lighthouse records the aggregate for fixed thresholds too ("to allow Bridge to display
    # it"), and 0 when there is nothing to compare with.
    compared = aggregated_previous if aggregated_previous is not None else 0.0
    if not criterion.is_comparison:
        satisfied = compare(measured, criterion.operator, criterion.value)
        return CriterionResult(satisfied, criterion.value, compared)
    if aggregated_previous is None:
        # No usable previous value: the relative criterion passes and its target is left
        # at Go's zero value (evaluate_sli_handler_test.go TestEvaluateObjectives "BUG 1125").
        return CriterionResult(True, 0.0, 0.0)
    target = relative_target(criterion, aggregated_previous)
    return CriterionResult(compare(measured, criterion.operator, target), target, compared)
