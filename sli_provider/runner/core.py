"""The runner core every launcher uses: plan → execute (through a back-end) → result.

The result carries what a launcher reports: the exit code, the thresholds, k6's compact
summary, its last output lines, the window and whether Prometheus received the run's series
(k6 exits 0 when its remote write fails, so only Prometheus can tell).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sli_provider.k6.invocation import RunTags
from sli_provider.runner.backend import K6Outcome, RunnerBackend, RunnerExit
from sli_provider.runner.plan import LocalScript, RunPlan
from sli_provider.runner.summary import (
    COMPLETED_RETURNCODES,
    THRESHOLDS_CROSSED,
    Threshold,
    crossed,
    no_series_message,
)

# Whether Prometheus holds series of the run tagged ``tags`` between start and end (unix s);
# the last argument is k6's own iteration count, which a check may wait to see in Prometheus.
SeriesCheck = Callable[[RunTags, float, float, float | None], Awaitable[bool]]


@dataclass(frozen=True)
class RunResult:
    plan: RunPlan
    outcome: K6Outcome
    # None: not asked (no check given, or k6 did not complete the test).
    wrote_series: bool | None

    @property
    def returncode(self) -> int:
        return self.outcome.returncode

    @property
    def completed(self) -> bool:
        """k6 ran the test to its end (thresholds held or crossed)."""
        return self.outcome.returncode in COMPLETED_RETURNCODES

    @property
    def thresholds_crossed(self) -> bool:
        return self.outcome.returncode == THRESHOLDS_CROSSED

    @property
    def crossed_thresholds(self) -> list[Threshold]:
        return crossed(self.outcome.summary.thresholds)

    def missing_series_message(self) -> str | None:
        """The explanation when k6 completed but Prometheus received nothing of the run."""
        if self.wrote_series is False:
            return no_series_message(self.plan.remote_write.url, self.outcome.returncode)
        return None

    def k6_data(self) -> dict[str, Any]:
        """The ``k6`` section of test.finished: compact, never k6's whole export."""
        script = self.plan.script
        binary = self.outcome.binary
        return {
            "exitCode": self.outcome.returncode,
            "durationMs": round((self.outcome.ended_at - self.outcome.started_at) * 1000, 3),
            "thresholds": [t.as_data() for t in self.outcome.summary.thresholds],
            "metrics": self.outcome.summary.metrics,
            "script": script.path.name if isinstance(script, LocalScript) else script.entry,
            "binary": binary.name if binary else None,
            "version": binary.version if binary else None,
            "extensions": list(binary.extensions) if binary else [],
            **(
                {"runners": [_runner_data(r) for r in self.outcome.runners]}
                if self.outcome.runners
                else {}
            ),
            **(
                {"abortedBy": self.outcome.aborted_by.as_data()}
                if self.outcome.aborted_by is not None
                else {}
            ),
        }


def _runner_data(runner: RunnerExit) -> dict[str, Any]:
    return {
        "name": runner.name,
        "exitCode": runner.exit_code,
        "iterations": runner.iterations,
        "thresholds": [t.as_data() for t in runner.thresholds],
        **({} if runner.log_read else {"log": "could not be read"}),
    }


async def run_plan(
    plan: RunPlan, backend: RunnerBackend, *, series_check: SeriesCheck | None = None
) -> RunResult:
    """Execute ``plan``; when k6 completed the test, ask whether Prometheus got its series.

    Raises what the back-end raises (``RunnerError``) and what ``series_check`` raises.
    """
    outcome = await backend.execute(plan)
    wrote_series = None
    if series_check is not None and outcome.returncode in COMPLETED_RETURNCODES:
        iterations = outcome.summary.metrics.get("iterations", {}).get("count")
        wrote_series = await series_check(
            plan.tags, outcome.started_at, outcome.ended_at, iterations
        )
    return RunResult(plan, outcome, wrote_series)
