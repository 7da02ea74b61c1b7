"""Why a built-in indicator has "no data", where Prometheus can tell.

In order: the window lies in the future; Prometheus holds no k6 series of the scope at all;
it holds some, but none in the window; the series in the window lack the trend stats the
built-ins read (k6 run without the runner's options writes only ``_p99``). The queries and
their reading are pure; :func:`explain_no_data` asks them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sli_provider.k6.invocation import TREND_STATS_SHOWN
from sli_provider.ports.querier import PrometheusError, Querier
from sli_provider.sli.freshness import run_series
from sli_provider.sli.templating import duration_seconds, scope_selector
from sli_provider.sli.window import SLIWindow

log = logging.getLogger(__name__)

# How far back "no k6 series at all" looks (at least to the window's start).
LOOKBACK_SECONDS = 30 * 24 * 3600
# A stat the runner asks k6 for and k6's default (p(99) only) does not write.
_SENTINEL_STAT_METRIC = "k6_http_req_duration_p95"
# A built-in that reads a trend stat other than k6's default p99.
_TREND_STAT_READ = re.compile(r"k6_\w+_(?:p(?!99\b)\d+|avg|min|max|med|sum|count)\{")


@dataclass(frozen=True)
class Probe:
    query: str
    at: float


@dataclass(frozen=True)
class Probes:
    anywhere: Probe  # any k6 series of the scope in the lookback
    in_window: Probe
    trend_stats: Probe


def probes(window: SLIWindow, now: float) -> Probes:
    scope = scope_selector(window)
    series = run_series(scope)
    lookback = max(LOOKBACK_SECONDS, int(now - window.start_s) + 1)
    window_range = f"{duration_seconds(window)}s"
    return Probes(
        anywhere=Probe(f"count(last_over_time({series}[{lookback}s]))", now),
        in_window=Probe(f"count(last_over_time({series}[{window_range}]))", window.end_s),
        trend_stats=Probe(
            f"count(last_over_time({_SENTINEL_STAT_METRIC}{{{scope}}}[{window_range}]))",
            window.end_s,
        ),
    )


def reads_trend_stats(query: str) -> bool:
    return bool(_TREND_STAT_READ.search(query))


def scope_reason(window: SLIWindow, now: float, *, anywhere: bool, in_window: bool) -> str | None:
    """Why no built-in of the scope can have data, or None when series are in the window."""
    name = f"{window.project}/{window.stage}/{window.service}"
    if window.start_s > now:
        return "the window lies in the future"
    if not anywhere:
        return (
            f"Prometheus holds no k6 series of {name} at all (tags keptn_project, keptn_stage, "
            "keptn_service): did k6 write to this Prometheus with these tags?"
        )
    if not in_window:
        return f"Prometheus holds k6 series of {name}, but none in the window"
    return None


TREND_STATS_REASON = (
    "the k6 series in the window lack the trend stats this indicator reads (k6 ran without "
    f"K6_PROMETHEUS_RW_TREND_STATS={TREND_STATS_SHOWN}, which `sli-provider run` sets)"
)


async def explain_no_data(
    prometheus: Querier, window: SLIWindow, queries: Sequence[str], now: float
) -> dict[str, str]:
    """The reason for each of ``queries`` (built-ins without data) that Prometheus can give."""
    if window.start_s > now:
        reason = scope_reason(window, now, anywhere=True, in_window=False)
        return dict.fromkeys(queries, reason or "")
    checks = probes(window, now)
    try:
        in_window = await _any(prometheus, checks.in_window)
        anywhere = in_window or await _any(prometheus, checks.anywhere)
        reason = scope_reason(window, now, anywhere=anywhere, in_window=in_window)
        if reason is not None:
            return dict.fromkeys(queries, reason)
        stat_readers = [q for q in queries if reads_trend_stats(q)]
        if stat_readers and not await _any(prometheus, checks.trend_stats):
            return dict.fromkeys(stat_readers, TREND_STATS_REASON)
    except PrometheusError as exc:
        # Only an explanation is lost; the values themselves are already known.
        log.info("could not find out why there is no data: %s", exc)
    return {}


async def _any(prometheus: Querier, probe: Probe) -> bool:
    return bool(await prometheus.instant(probe.query, probe.at))
