"""The exact numbers of a whole run, computed from the raw samples k6 wrote (``--out json=``).

The result has the shape of k6's handleSummary ``metrics`` values (metric → stat → value, times
in ms), so ``devkit.k6summary.expected_values`` turns it into what each built-in SLI should
equal, as if one k6 process had run the whole workload.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PERCENTILES = (50.0, 90.0, 95.0, 99.0)
# The percentile built-ins and the k6 metric and stat each one equals.
PERCENTILE_SLIS: dict[str, tuple[str, str]] = {
    "http_req_duration_p50": ("http_req_duration", "p(50)"),
    "http_req_duration_p90": ("http_req_duration", "p(90)"),
    "http_req_duration_p95": ("http_req_duration", "p(95)"),
    "http_req_duration_p99": ("http_req_duration", "p(99)"),
    "iteration_duration_p95": ("iteration_duration", "p(95)"),
}


def percentile(ordered: Sequence[float], pct: float) -> float:
    """k6's percentile (``TrendSink.P``): linear interpolation between the ranks around it."""
    if not ordered:
        return 0.0
    rank = pct / 100.0 * (len(ordered) - 1)
    low, high = ordered[math.floor(rank)], ordered[math.ceil(rank)]
    return low + (high - low) * (rank - math.floor(rank))


@dataclass
class InstanceSamples:
    """One k6 process's samples, per metric."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def of(self, metric: str) -> list[float]:
        return self.values.get(metric, [])


def read_samples(path: Path) -> InstanceSamples:
    samples = InstanceSamples()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record.get("type") == "Point":
                samples.values.setdefault(record["metric"], []).append(
                    float(record["data"]["value"])
                )
    return samples


def trend(values: Iterable[float]) -> dict[str, float]:
    ordered = sorted(values)
    stats = {
        "count": float(len(ordered)),
        "avg": sum(ordered) / len(ordered) if ordered else 0.0,
        "max": ordered[-1] if ordered else 0.0,
        "min": ordered[0] if ordered else 0.0,
    }
    for pct in PERCENTILES:
        stats[f"p({pct:g})"] = percentile(ordered, pct)
    return stats


def union_metrics(instances: Sequence[InstanceSamples]) -> dict[str, dict[str, float]]:
    """The whole run's summary values from every instance's samples."""

    def every(metric: str) -> list[float]:
        return [value for instance in instances for value in instance.of(metric)]

    def rate(metric: str) -> float:
        values = every(metric)
        return sum(1 for v in values if v != 0) / len(values) if values else 0.0

    return {
        "http_reqs": {"count": sum(every("http_reqs"))},
        "iterations": {"count": sum(every("iterations"))},
        "data_received": {"count": sum(every("data_received"))},
        "data_sent": {"count": sum(every("data_sent"))},
        # The instances run at the same time: their peaks add up.
        "vus_max": {"max": sum(max(i.of("vus_max"), default=0.0) for i in instances)},
        "http_req_failed": {"rate": rate("http_req_failed")},
        "checks": {"rate": rate("checks")},
        "http_req_duration": trend(every("http_req_duration")),
        "iteration_duration": trend(every("iteration_duration")),
    }


def naive_max_of_instances(instances: Sequence[InstanceSamples], metric: str, stat: str) -> float:
    """What taking the largest instance's percentile gives (an upper bound of the union's)."""
    return max(trend(instance.of(metric))[stat] for instance in instances if instance.of(metric))
