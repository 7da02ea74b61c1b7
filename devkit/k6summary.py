"""What each built-in SLI should equal in k6's own end-of-test summary, and how closely."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Expectation:
    value: float
    rel: float = 0.0  # allowed relative difference
    abs: float = 0.0  # allowed absolute difference
    source: str = ""

    def holds(self, got: float) -> bool:
        return abs(got - self.value) <= max(self.rel * abs(self.value), self.abs)


# Tolerances of the issue: counts exactly, rates 1e-6, avg/max 0.1 %, percentiles 1 %.
EXACT, RATE, MEAN, PERCENTILE = 0.0, 1e-6, 1e-3, 1e-2


def from_handle_summary(summary: Mapping[str, Any]) -> dict[str, Mapping[str, float]]:
    """handleSummary's ``data`` → metric → stat → value (the shape test.finished's data.k6 has)."""
    return {name: metric["values"] for name, metric in summary["metrics"].items()}


def expected_values(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, Expectation]:
    """Built-in SLI name → k6's value, for every built-in SLI k6's summary states.

    Not ``http_reqs_per_second``: it is per second of the event's window, which k6 does not
    know (its ``http_reqs.rate`` divides by its own test duration). Tests check it against the
    requests the load target served over ``event_window_seconds``.
    """

    def v(metric: str, stat: str) -> float:
        return float(metrics[metric][stat])

    duration = "http_req_duration"
    expectations = {
        "http_reqs_total": Expectation(v("http_reqs", "count"), source="http_reqs.count"),
        "iterations_total": Expectation(v("iterations", "count"), source="iterations.count"),
        "data_received_bytes": Expectation(
            v("data_received", "count"), source="data_received.count"
        ),
        "data_sent_bytes": Expectation(v("data_sent", "count"), source="data_sent.count"),
        "vus_max": Expectation(v("vus_max", "max"), source="vus_max.max"),
        "http_req_failed_rate": Expectation(
            v("http_req_failed", "rate"), abs=RATE, source="http_req_failed.rate"
        ),
        "checks_rate": Expectation(v("checks", "rate"), abs=RATE, source="checks.rate"),
        "http_req_duration_avg": Expectation(
            v(duration, "avg"), rel=MEAN, source=f"{duration}.avg"
        ),
        "http_req_duration_max": Expectation(
            v(duration, "max"), rel=MEAN, source=f"{duration}.max"
        ),
        "iteration_duration_p95": Expectation(
            v("iteration_duration", "p(95)"), rel=PERCENTILE, source="iteration_duration.p(95)"
        ),
    }
    for p in ("50", "90", "95", "99"):
        expectations[f"http_req_duration_p{p}"] = Expectation(
            v(duration, f"p({p})"), rel=PERCENTILE, source=f"{duration}.p({p})"
        )
    return expectations


def relative_errors(
    got: Mapping[str, float], expected: Mapping[str, Expectation]
) -> dict[str, float]:
    """SLI name → |got - k6| / |k6| (absolute where k6 says 0), for reporting fidelity per store."""
    return {
        name: abs(got[name] - e.value) / abs(e.value) if e.value else abs(got[name])
        for name, e in expected.items()
    }


def event_window_seconds(start: str, end: str) -> float:
    """``end - start`` of an event's RFC 3339 window, read with the standard library only.

    So a test does not check the service's timestamp parsing with that same parsing.
    """
    return datetime.fromisoformat(end).timestamp() - datetime.fromisoformat(start).timestamp()
