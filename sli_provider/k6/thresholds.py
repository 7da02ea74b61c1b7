"""k6 thresholds judged on a whole run's values from the store (pure).

A script's ``options.thresholds`` (``{"http_req_duration": ["p(95)<500"]}``, k6's own format,
as ``k6 inspect`` prints it) are judged here on the built-in SLIs, which equal k6's end-of-test
summary of the run (all of its k6 instances together). Only a threshold with a built-in for its
metric and aggregation is accepted; any other is refused with the list of what is, so no
threshold is silently left out.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sli_provider.errors import SliProviderError

# (k6 metric, aggregation) -> the built-in SLI holding that value for the whole run.
BUILTIN_FOR: dict[tuple[str, str], str] = {
    **{("http_req_duration", f"p({p})"): f"http_req_duration_p{p}" for p in (50, 90, 95, 99)},
    ("http_req_duration", "med"): "http_req_duration_p50",
    ("http_req_duration", "avg"): "http_req_duration_avg",
    ("http_req_duration", "max"): "http_req_duration_max",
    ("iteration_duration", "p(95)"): "iteration_duration_p95",
    ("http_req_failed", "rate"): "http_req_failed_rate",
    ("checks", "rate"): "checks_rate",
    ("http_reqs", "count"): "http_reqs_total",
    ("http_reqs", "rate"): "http_reqs_per_second",
    ("iterations", "count"): "iterations_total",
    ("vus_max", "value"): "vus_max",
    ("data_received", "count"): "data_received_bytes",
    ("data_sent", "count"): "data_sent_bytes",
}
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "===": operator.eq,
    "!=": operator.ne,
}
_EXPRESSION = re.compile(
    r"\s*([a-z]+(?:\(\d+(?:\.\d+)?\))?)\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*"
)


class ThresholdError(SliProviderError, ValueError):
    """A threshold that cannot be judged here; the message says which and why."""


@dataclass(frozen=True)
class Threshold:
    metric: str
    expression: str
    sli: str
    compare: Callable[[float, float], bool]
    bound: float

    def holds(self, value: float) -> bool:
        return self.compare(value, self.bound)


def parse_thresholds(raw: Any) -> list[Threshold]:
    """k6's thresholds object; every problem is named at once."""
    if not isinstance(raw, Mapping):
        raise ThresholdError(
            'thresholds must be an object such as {"http_req_failed": ["rate<0.01"]}'
        )
    found, problems = [], []
    for metric, items in raw.items():
        for item in items if isinstance(items, list) else [items]:
            text = item.get("threshold") if isinstance(item, Mapping) else item
            match = _EXPRESSION.fullmatch(text) if isinstance(text, str) else None
            if match is None:
                problems.append(f"{metric}: {text!r} is not 'aggregation operator number'")
                continue
            aggregation, op, bound = match.groups()
            sli = BUILTIN_FOR.get((str(metric), aggregation))
            if sli is None:
                problems.append(f"{metric}: {aggregation} has no whole-run value here")
                continue
            found.append(Threshold(str(metric), str(text), sli, _OPERATORS[op], float(bound)))
    if problems:
        known = ", ".join(f"{m}: {a}" for m, a in BUILTIN_FOR)
        raise ThresholdError("; ".join(problems) + f" (judged here: {known})")
    return found
