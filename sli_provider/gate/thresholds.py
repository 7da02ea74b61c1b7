"""k6 thresholds judged on the built-in SLIs of a whole run (pure).

A script's ``options.thresholds`` (``{"http_req_duration": ["p(95)<500"]}``, k6's own format,
as ``k6 inspect`` prints it; parsed by ``k6/thresholds.py``) are judged here on the built-in
SLIs, which equal k6's end-of-test summary of the run (all of its k6 instances together). Only
a threshold with a built-in for its metric and aggregation is accepted; any other is refused
with the list of what is, so no threshold is silently left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sli_provider.k6.thresholds import ThresholdError, ThresholdSpec
from sli_provider.k6.thresholds import parse_thresholds as parse_k6_thresholds

__all__ = ["BUILTIN_FOR", "Threshold", "ThresholdError", "parse_thresholds"]

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


@dataclass(frozen=True)
class Threshold:
    """One k6 threshold and the built-in SLI it is judged on."""

    spec: ThresholdSpec
    sli: str

    @property
    def metric(self) -> str:
        return self.spec.key

    @property
    def expression(self) -> str:
        return self.spec.expression

    def holds(self, value: float) -> bool:
        return self.spec.held_at(value)


def _aggregation(spec: ThresholdSpec) -> str:
    return f"p({spec.percent:g})" if spec.aggregation == "p" else spec.aggregation


def parse_thresholds(raw: Any) -> list[Threshold]:
    """k6's thresholds object; every problem is named at once."""
    if not isinstance(raw, Mapping):
        raise ThresholdError(
            'thresholds must be an object such as {"http_req_failed": ["rate<0.01"]}'
        )
    found, problems = [], []
    for metric, items in raw.items():
        entries = items if isinstance(items, list) else [items]
        for entry in entries:
            try:
                (spec,) = parse_k6_thresholds({str(metric): [entry]})
            except ThresholdError as exc:
                problems.append(str(exc))
                continue
            sli = None if spec.tags else BUILTIN_FOR.get((spec.name, _aggregation(spec)))
            if sli is None:
                problems.append(f"{metric}: {_aggregation(spec)} has no whole-run value here")
                continue
            found.append(Threshold(spec, sli))
    if problems:
        known = ", ".join(f"{m}: {a}" for m, a in BUILTIN_FOR)
        raise ThresholdError("; ".join(problems) + f" (judged here: {known})")
    return found
