"""Turning a Prometheus instant-query result into one indicator value, or a reason it has none."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sli_provider.errors import SliProviderError


class ValueFailure(SliProviderError, ValueError):
    """The query ran but gave no single finite value; ``code`` is stable, the text says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def single_value(result: Any) -> float:
    """The one finite number in ``data.result`` of an instant query (vector or scalar)."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return _finite(result[1])  # a scalar result is [time, "value"]
    if not isinstance(result, list):
        raise ValueFailure("bad_result", f"unexpected result shape {type(result).__name__}")
    if not result:
        raise ValueFailure("no_data", "no data: the query returned an empty result")
    if len(result) > 1:
        raise ValueFailure(
            "multi_series",
            f"the query returned {len(result)} series ({_describe(result)}); "
            "aggregate it to one, e.g. with sum() or max()",
        )
    sample = result[0]
    if not isinstance(sample, dict) or "value" not in sample:
        raise ValueFailure("bad_result", "a range (matrix) result; SLIs need an instant vector")
    return _finite(sample["value"][1])


def _finite(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueFailure("bad_result", f"not a number: {raw!r}") from None
    if math.isnan(value):
        raise ValueFailure("non_finite", "the query returned NaN (e.g. 0/0: no samples to divide)")
    if math.isinf(value):
        raise ValueFailure("non_finite", f"the query returned {'+' if value > 0 else '-'}Inf")
    return value


def _describe(result: Sequence[Any], limit: int = 3) -> str:
    shown = []
    for sample in result[:limit]:
        labels = sample.get("metric", {}) if isinstance(sample, dict) else {}
        shown.append("{" + ",".join(f"{k}={v!r}" for k, v in sorted(labels.items())) + "}")
    more = f", +{len(result) - limit} more" if len(result) > limit else ""
    return ", ".join(shown) + more
