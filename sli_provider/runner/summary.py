"""What a finished k6 run means for Keptn: thresholds, a compact summary, the outcome."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sli_provider.k6.thresholds import format_value
from sli_provider.keptn.envelope import Result, Status

THRESHOLDS_CROSSED = 99
# k6 ran the test to its end: all thresholds held, or some were crossed. Anything else means
# the test did not run as written (script error, abort, bad option), see K6_EXIT_MEANINGS.
COMPLETED_RETURNCODES = frozenset({0, THRESHOLDS_CROSSED})
# Metrics whose summary goes into test.finished; the full export stays out of Keptn's payloads.
SUMMARY_METRICS = (
    "http_reqs",
    "http_req_duration",
    "http_req_failed",
    "checks",
    "iterations",
    "vus_max",
    "data_received",
    "data_sent",
    "iteration_duration",
)
K6_EXIT_MEANINGS = {
    97: "k6 was interrupted",
    98: "k6 failed to set up",
    100: "k6 setup() or teardown() timed out",
    104: "invalid k6 configuration",
    105: "an external abort",
    107: "a script error",
    108: "the script aborted the test (exec.test.abort)",
    255: "k6 could not start (bad option?)",
}


@dataclass(frozen=True)
class Threshold:
    """One threshold's verdict; ``value`` is what it was judged on, when known (the whole test's
    value for a split run), ``note`` why it could not be judged (then it does not hold)."""

    metric: str
    expression: str
    held: bool
    value: float | None = None  # the aggregate the expression tests, as k6 reported it
    note: str | None = None

    def as_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "metric": self.metric,
            "threshold": self.expression,
            "ok": self.held,
        }
        if self.value is not None:
            data["value"] = self.value
        if self.note is not None:
            data["notJudged"] = self.note
        return data

    def describe(self) -> str:
        if self.note is not None:
            return f"{self.metric}: {self.expression} (not judged: {self.note})"
        if self.value is not None:
            return f"{self.metric}: {self.expression} (whole test: {format_value(self.value)})"
        return f"{self.metric}: {self.expression}"


@dataclass(frozen=True)
class RunReport:
    thresholds: tuple[Threshold, ...]
    metrics: Mapping[str, Mapping[str, float]]


def read_summary_export(text: str | bytes) -> RunReport:
    """``--summary-export`` JSON: ``thresholds`` maps expressions to True when *crossed*."""
    document = json.loads(text)
    raw_metrics = document.get("metrics", {}) if isinstance(document, Mapping) else {}
    thresholds: list[Threshold] = []
    metrics: dict[str, dict[str, float]] = {}
    for name, values in sorted(raw_metrics.items()):
        if not isinstance(values, Mapping):
            continue
        for expression, crossed in (values.get("thresholds") or {}).items():
            value = threshold_value(str(expression), values)
            thresholds.append(Threshold(name, str(expression), not bool(crossed), value))
        if name in SUMMARY_METRICS:
            metrics[name] = _stats(values)
    return RunReport(tuple(thresholds), metrics)


_AGGREGATE = re.compile(r"\s*([A-Za-z]+(?:\([0-9.]+\))?)\s*(?:<|>|=|!)")


def threshold_value(expression: str, values: Mapping[str, Any]) -> float | None:
    """The number k6 compared in ``expression`` (``p(95)<500`` → the export's ``p(95)``).

    A Rate's ratio is called ``value`` in the export, and so is a Gauge's.
    """
    match = _AGGREGATE.match(expression)
    if match is None:
        return None
    name = match.group(1)
    if name == "rate" and "passes" in values:
        name = "value"
    raw = values.get(name)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)


def _stats(values: Mapping[str, Any]) -> dict[str, float]:
    stats = {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k != "thresholds"
    }
    # The export calls a Rate's ratio "value" (and counts true values as "passes").
    if "passes" in stats and "value" in stats:
        stats["rate"] = stats.pop("value")
    return stats


def crossed(thresholds: Sequence[Threshold]) -> list[Threshold]:
    return [t for t in thresholds if not t.held]


def outcome_for_exit(
    returncode: int,
    thresholds: Sequence[Threshold],
    *,
    on_threshold_failure: str,
    output_tail: Sequence[str],
    aborted: Threshold | None = None,
) -> tuple[Status, Result, str]:
    """``aborted``: the threshold whose crossing stopped the run (a split run's abortOnFail)."""
    if aborted is not None:
        result = Result.WARNING if on_threshold_failure == "warning" else Result.FAIL
        shown = format_value(aborted.value) if aborted.value is not None else "?"
        message = f"aborted: {aborted.metric}: {aborted.expression} crossed at {shown}"
        others = [
            t
            for t in crossed(thresholds)
            if (t.metric, t.expression) != (aborted.metric, aborted.expression)
        ]
        if others:
            message += "; also crossed: " + ", ".join(t.describe() for t in others)
        return Status.SUCCEEDED, result, message
    if returncode == 0:
        return Status.SUCCEEDED, Result.PASS, f"k6 run passed; {len(thresholds)} thresholds held"
    if returncode == THRESHOLDS_CROSSED:
        result = Result.WARNING if on_threshold_failure == "warning" else Result.FAIL
        failed = crossed(thresholds)
        parts = []
        judged = [t.describe() for t in failed if t.note is None]
        if judged or not failed:
            parts.append("k6 thresholds crossed: " + (", ".join(judged) or "unknown"))
        unjudged = [t.describe() for t in failed if t.note is not None]
        if unjudged:
            parts.append("k6 thresholds that cannot be judged: " + ", ".join(unjudged))
        return Status.SUCCEEDED, result, "; ".join(parts)
    meaning = K6_EXIT_MEANINGS.get(returncode, "an error")
    tail = "\n".join(output_tail[-15:])
    return Status.ERRORED, Result.FAIL, f"k6 exited with code {returncode} ({meaning}):\n{tail}"


def no_series_message(remote_write_url: str, returncode: int) -> str:
    """Why a completed run without series in Prometheus is an error (k6 does not notice)."""
    return (
        f"k6 wrote no metrics to Prometheus ({remote_write_url}): is its remote-write receiver "
        "enabled (--web.enable-remote-write-receiver)? k6 itself exits "
        f"{returncode} when remote write fails."
    )
