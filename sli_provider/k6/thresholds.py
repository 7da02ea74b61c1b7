"""A k6 script's thresholds as ``k6 inspect`` gives them, and judging one on a value (pure).

``k6 inspect`` prints the script's options; ``thresholds`` maps a metric (or a submetric such as
``http_req_duration{kind:api}``) to a list of expressions, each a string or an object
``{"threshold": ..., "abortOnFail": true, "delayAbortEval": "10s"}``. An expression is
``<aggregation> <operator> <number>`` as k6 parses it: the aggregations ``count``, ``rate``,
``value``, ``avg``, ``min``, ``max``, ``med``, ``p(N)``; the operators ``<``, ``<=``, ``>``,
``>=``, ``==``, ``===``, ``!=``. Values of time metrics are in milliseconds, as in k6.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sli_provider.errors import SliProviderError

AGGREGATIONS = ("count", "rate", "value", "avg", "min", "max", "med")
_EXPRESSION = re.compile(
    r"^\s*(?P<agg>count|rate|value|avg|min|max|med|p\(\s*(?P<pct>\d+(?:\.\d+)?)\s*\))"
    r"\s*(?P<op>===|==|!=|<=|>=|<|>)\s*(?P<bound>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_METRIC = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\{(?P<tags>.*)\})?\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "===": operator.eq,
    "!=": operator.ne,
}


class ThresholdError(SliProviderError, ValueError):
    """A threshold as k6 inspect printed it cannot be read; the message names it."""


@dataclass(frozen=True)
class ThresholdSpec:
    """One expression of one (sub)metric. ``key`` is the metric as the script wrote it
    (``http_req_duration{kind:api}``), ``name`` the metric, ``tags`` the submetric's tags."""

    key: str
    name: str
    tags: tuple[tuple[str, str], ...]
    expression: str
    aggregation: str  # count, rate, value, avg, min, max, med or p
    percent: float | None  # for p(N)
    op: str
    bound: float
    abort_on_fail: bool = False
    delay_abort_eval_s: float = 0.0

    def held_at(self, value: float) -> bool:
        """Whether the threshold holds for ``value`` (NaN never holds)."""
        return not math.isnan(value) and _OPERATORS[self.op](value, self.bound)


def parse_inspect(output: str | bytes) -> list[ThresholdSpec]:
    """The thresholds in ``k6 inspect`` output (k6 >= 1.0 prints the options; older versions
    wrap them in ``{"options": ...}``)."""
    try:
        document = json.loads(output)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ThresholdError(f"k6 inspect printed no JSON: {exc}") from None
    if not isinstance(document, Mapping):
        raise ThresholdError("k6 inspect printed no options object")
    options = document.get("options", document)
    raw = options.get("thresholds") if isinstance(options, Mapping) else None
    return parse_thresholds(raw or {})


def parse_thresholds(raw: Mapping[str, Any]) -> list[ThresholdSpec]:
    specs: list[ThresholdSpec] = []
    for key, entries in sorted(raw.items()):
        name, tags = parse_metric(key)
        for entry in entries if isinstance(entries, list) else [entries]:
            specs.append(_spec(key, name, tags, entry))
    return specs


def parse_metric(key: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``http_req_duration{kind:api, "name":'x'}`` → the name and its tags, as k6 parses it."""
    match = _METRIC.match(key)
    if match is None:
        raise ThresholdError(f"threshold metric {key!r} is not 'name' or 'name{{tag:value}}'")
    tags: list[tuple[str, str]] = []
    for part in (match.group("tags") or "").split(","):
        if not part.strip():
            continue
        tag, colon, value = part.partition(":")
        if not colon:
            raise ThresholdError(f"threshold metric {key!r}: tag {part.strip()!r} has no ':value'")
        tags.append((_unquote(tag.strip()), _unquote(value.strip())))
    return match.group("name"), tuple(tags)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _spec(key: str, name: str, tags: tuple[tuple[str, str], ...], entry: Any) -> ThresholdSpec:
    abort, delay = False, 0.0
    if isinstance(entry, Mapping):
        expression = entry.get("threshold")
        abort = bool(entry.get("abortOnFail", False))
        delay = parse_duration(entry.get("delayAbortEval") or "0s")
    else:
        expression = entry
    if not isinstance(expression, str):
        raise ThresholdError(f"threshold of {key!r} is not an expression: {entry!r}")
    match = _EXPRESSION.match(expression)
    if match is None:
        raise ThresholdError(
            f"threshold {key}: {expression!r} is not '<aggregation> <operator> <number>'"
        )
    aggregation = "p" if match.group("pct") is not None else match.group("agg")
    percent = float(match.group("pct")) if match.group("pct") is not None else None
    return ThresholdSpec(
        key=key,
        name=name,
        tags=tags,
        expression=expression,
        aggregation=aggregation,
        percent=percent,
        op=match.group("op"),
        bound=float(match.group("bound")),
        abort_on_fail=abort,
        delay_abort_eval_s=delay,
    )


def parse_duration(text: Any) -> float:
    """A k6/Go duration (``10s``, ``1m30s``, ``500ms``) or a number of milliseconds, in seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text) / 1000.0
    value = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value) / 1000.0
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ThresholdError(f"delayAbortEval {text!r} is not a duration such as 10s or 1m30s")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def format_value(value: float) -> str:
    """A threshold value as a message shows it: up to 6 significant digits."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"
