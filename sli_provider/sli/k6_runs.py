"""Which k6 runs of a scope the store holds, and each one's span: the gate's "latest run".

A run is one ``keptn_context``. Its span comes from the samples of its cheapest series
(``k6_vus_max``, one per k6 instance, and ``k6_iterations_total``), two instant queries:

1. ``count_over_time`` of those series per context, as a subquery with one-minute steps over the
   lookback: every sample lies in exactly one step, so every run is seen, however short, and
   each run's first and last minute are known;
2. for the newest run(s), the raw samples of their series over those minutes (a range selector
   in an instant query returns the samples themselves), whose first and last timestamps are the
   run's span, to the millisecond.

k6 stamps the samples of a push with the push's time, so the first ones come one push interval
(``K6_PROMETHEUS_RW_PUSH_INTERVAL``, 1 s as the runner invokes k6) after k6 started; the final
push, at k6's exit, stamps every metric within milliseconds (k6-prometheus.md §1.9). The window
the gate scores therefore starts one push interval before the first sample and ends just after
the last one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sli_provider.ports.querier import Querier
from sli_provider.sli.freshness import (
    RUN_SERIES_NAMES,
    RUN_SERIES_NAMES_LIST,
    freshness_queries,
    read_sighting,
)
from sli_provider.sli.templating import label_matchers
from sli_provider.sli.window import SLIWindow

STEP_SECONDS = 60
# k6's push interval as the bundled runner sets it: the first samples of a run come this late.
PUSH_INTERVAL_SECONDS = 1.0
# The final push stamps each metric a few milliseconds apart; this keeps all of them in.
FINAL_PUSH_SLACK_SECONDS = 0.5


@dataclass(frozen=True)
class Scope:
    project: str
    stage: str
    service: str

    def selector(self, context: str | None = None) -> str:
        matchers = [
            ("keptn_project", self.project),
            ("keptn_stage", self.stage),
            ("keptn_service", self.service),
        ]
        if context is not None:
            matchers.append(("keptn_context", context))
        return label_matchers(matchers)


@dataclass(frozen=True)
class FoundRun:
    """A run's context and the timestamps of its first and last sample (unix seconds)."""

    context: str
    first_sample_s: float
    last_sample_s: float

    @property
    def start_s(self) -> float:
        return self.first_sample_s - PUSH_INTERVAL_SECONDS

    @property
    def end_s(self) -> float:
        return self.last_sample_s + FINAL_PUSH_SLACK_SECONDS


def minutes_query(scope: Scope, lookback_s: float, context: str | None = None) -> str:
    steps = max(1, math.ceil(lookback_s / STEP_SECONDS))
    # Each metric counted on its own: without their names the two would share label sets.
    counts = " or ".join(
        f"sum by (keptn_context) (count_over_time({name}{{{scope.selector(context)}}}"
        f"[{STEP_SECONDS}s]))"
        for name in RUN_SERIES_NAMES_LIST
    )
    return f"({counts})[{steps * STEP_SECONDS}s:{STEP_SECONDS}s]"


def samples_query(scope: Scope, context: str, range_s: int) -> str:
    return f'{{__name__=~"{RUN_SERIES_NAMES}",{scope.selector(context)}}}[{range_s}s]'


def _minutes(result: Sequence[Any]) -> dict[str, tuple[float, float]]:
    """context → (first, last) step time that held samples of it."""
    spans: dict[str, tuple[float, float]] = {}
    for series in result:
        context = str(series.get("metric", {}).get("keptn_context", ""))
        times = [float(point[0]) for point in series.get("values", [])]
        if context and times:
            spans[context] = (min(times), max(times))
    return spans


async def find_runs(
    prometheus: Querier, scope: Scope, now: float, lookback_s: float, context: str | None = None
) -> list[FoundRun]:
    """The newest run of the scope within ``lookback_s`` before ``now`` (or the run
    ``context``); several only when they ended in the same minute. Empty: none found."""
    # Evaluated at the next step boundary, so the last step covers everything up to now.
    at = math.ceil(now / STEP_SECONDS) * STEP_SECONDS
    spans = _minutes(await prometheus.instant(minutes_query(scope, lookback_s, context), at))
    if not spans:
        return []
    newest = max(last for _first, last in spans.values())
    runs = []
    for run_context, (first, last) in spans.items():
        if last != newest:
            continue
        range_s = int(last - first) + STEP_SECONDS
        result = await prometheus.instant(samples_query(scope, run_context, range_s), last)
        stamps = [float(p[0]) for series in result for p in series.get("values", [])]
        if stamps:
            runs.append(FoundRun(run_context, min(stamps), max(stamps)))
    return sorted(runs, key=lambda r: r.last_sample_s, reverse=True)


# k6 pushes every 5 s by default: a live series whose newest sample is younger than this may
# still get more.
IN_PROGRESS_SECONDS = 15.0


async def in_progress(prometheus: Querier, window: SLIWindow, now: float) -> bool:
    """Whether the run ``window.context`` may still be writing: its series have no stale
    marker at ``now`` (k6 writes them at exit) and their newest sample is recent. A run k6 ran
    without ``K6_PROMETHEUS_RW_STALE_MARKERS`` looks live for five minutes; its samples stop."""
    live = await prometheus.instant(freshness_queries(window).live, now)
    newest = read_sighting(live, []).newest_live_s
    return newest is not None and now - newest < IN_PROGRESS_SECONDS
