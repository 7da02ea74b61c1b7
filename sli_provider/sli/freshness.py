"""Has a k6 run finished writing what its window covers? The query that asks, and its reading.

k6 pushes remote write every push interval and a last time at exit, with a stale marker for every
series (``K6_PROMETHEUS_RW_STALE_MARKERS``, which the runner sets). So, asked at ``now``:

* the run's series still answer an instant query (no stale marker yet) and their newest sample
  lies before ``end``: k6 has not finished writing the window; its final push is late, or the
  run is still going. Samples at or past ``end`` mean everything up to ``end`` has arrived, since
  k6 pushes in order (``min(timestamp(S)) and count(S)``: VictoriaMetrics' ``timestamp()`` looks
  past stale markers, its plain selector does not, like Prometheus');
* the store hides recent samples (VictoriaMetrics: new series and ``-search.latencyOffset``) and
  does not show both vus_max and iterations_total of the run in the window yet, though ``end``
  is recent: not visible yet;
* otherwise the window's data is final. No series at all (custom SLIs only, another scope) is
  final too: there is nothing to wait for.

Two instant queries, asked together, answer all of it (:func:`freshness_queries`); :func:`judge`
is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sli_provider.sli.templating import duration_seconds, scope_selector
from sli_provider.sli.window import SLIWindow

# The run's cheapest series, as the run-series check and the no-data diagnosis read them: one
# vus_max series per k6 instance, one iterations_total per scenario.
RUN_SERIES_NAMES_LIST = ("k6_vus_max", "k6_iterations_total")
RUN_SERIES_NAMES = "k6_(vus_max|iterations_total)"


def run_series(scope: str) -> str:
    """The selector of the run's cheapest series, for ``scope`` matchers."""
    return f'{{__name__=~"{RUN_SERIES_NAMES}",{scope}}}'


def window_check_names(hides_recent_seconds: float) -> tuple[str, ...]:
    """The metrics whose presence in the window the freshness queries count. A store that hides
    recent samples must show both before the data counts as final (:func:`judge`); for any other
    store the count only answers the run-series check, and vus_max alone (one series per k6
    instance) answers it for every run that lasted a gauge tick. Counting iterations_total in
    the window too decodes every one of its series' samples, most of the freshness check's cost
    where iterations carry request-level tags (bench/README.md). Without vus_max the run-series
    check asks again, iterations_total included."""
    return RUN_SERIES_NAMES_LIST if hides_recent_seconds > 0 else RUN_SERIES_NAMES_LIST[:1]


@dataclass(frozen=True)
class FreshnessQueries:
    """``live`` is asked at now: the oldest newest-sample time among the run's series that have
    no stale marker yet. ``in_window`` is asked at the window's end: how many of the counted
    metrics the window holds.

    Two queries, not one: in one query the window's ``@ end`` range widened the time range the
    live selectors at now were read over, which cost Prometheus about ten times what the two
    halves cost (bench/README.md). Each metric is
    aggregated on its own: with ``--system-tags ""`` vus_max and iterations_total carry the same
    labels, and ``timestamp()`` drops the names that told them apart.
    """

    live: str
    in_window: str


def freshness_queries(
    window: SLIWindow, in_window_names: Sequence[str] = RUN_SERIES_NAMES_LIST
) -> FreshnessQueries:
    scope = scope_selector(window, with_context=True)
    over = f"[{duration_seconds(window)}s]"
    live, in_window = [], []
    for name in RUN_SERIES_NAMES_LIST:
        series = f"{name}{{{scope}}}"
        live.append(f"(min(timestamp({series})) and count({series}))")
    for name in in_window_names:
        series = f"{name}{{{scope}}}"
        in_window.append(f"((count(last_over_time({series}{over})) > bool 0) or vector(0))")
    return FreshnessQueries(live=" or ".join(live), in_window=" + ".join(in_window))


@dataclass(frozen=True)
class Sighting:
    """What the freshness queries saw."""

    newest_live_s: float | None  # None: no series of the run answers at now (stale or absent)
    metrics_in_window: int  # of the names the query counted (window_check_names)

    @property
    def in_window(self) -> bool:
        return self.metrics_in_window > 0


def read_sighting(live: Sequence[Any], in_window: Sequence[Any]) -> Sighting:
    """The freshness queries' ``data.result`` as a :class:`Sighting`."""
    newest = _first_value(live)
    shown = _first_value(in_window)
    return Sighting(newest_live_s=newest, metrics_in_window=int(shown or 0))


def _first_value(result: Sequence[Any]) -> float | None:
    for sample in result:
        try:
            return float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return None


@dataclass(frozen=True)
class Verdict:
    final: bool
    reason: str = ""  # why not final, for the reply's message


def judge(
    window: SLIWindow, sighting: Sighting, now: float, *, hides_recent_seconds: float = 0.0
) -> Verdict:
    """Whether the window's data of the run is final in the store."""
    newest = sighting.newest_live_s
    if newest is not None and newest < window.end_s:
        return Verdict(
            False,
            f"the run's k6 series have no end-of-test stale marker yet and their newest sample "
            f"is {window.end_s - newest:.1f} s older than the window's end (k6's last push not "
            "visible, or k6 ran without K6_PROMETHEUS_RW_STALE_MARKERS=true)",
        )
    shown = sighting.metrics_in_window
    if shown < len(RUN_SERIES_NAMES_LIST) and 0 <= now - window.end_s < hides_recent_seconds:
        # VictoriaMetrics 1.79 shows a run's series one by one, vus_max seconds after the
        # others (docs/fresh-data.md). A run shorter than k6's one-second vus_max tick waits here too.
        return Verdict(
            False,
            f"the store shows {shown} of the run's {len(RUN_SERIES_NAMES_LIST)} k6 metrics the "
            f"check reads; it shows samples up to {hides_recent_seconds:g} s late",
        )
    return Verdict(True)
