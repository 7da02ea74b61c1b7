"""The runner's "did Prometheus receive this run?" check, asked the way get-sli asks it.

Present is not enough: k6's last push at exit can become visible after k6 has exited (more so
with the dense trend stats, which make that push large), and a get-sli that Keptn sends right
after test.finished would then score a run short of its last second. So the check also waits,
bounded, until Prometheus holds as many iterations as k6's own summary counted.

Nor is "present" known at once in every store: VictoriaMetrics 1.79 makes a run's new series
searchable only at its next periodic index update, observed up to 11 s after the first sample
(8 s after a 2 s run's k6 exited), even with a 1 s ``-search.latencyOffset``. A single query
then reported "k6 wrote no metrics" for runs it held, so presence is polled within the same
bound; only a store that really got nothing costs the whole bound.
"""

from __future__ import annotations

import logging

from sli_provider.adapters.retry import Deadline
from sli_provider.k6.invocation import RunTags
from sli_provider.ports.querier import Querier
from sli_provider.runner.core import SeriesCheck
from sli_provider.sli.final_push import poll_until
from sli_provider.sli.plan import run_iterations_query
from sli_provider.sli.results import ValueFailure, single_value
from sli_provider.sli.run_series import run_has_series
from sli_provider.sli.window import SLIWindow

log = logging.getLogger(__name__)

# Covers VictoriaMetrics 1.79's index update, which runs every ~10 s: a run's series appear up
# to ~11 s after their first sample, up to ~10 s after a short run's k6 exited. Only a store that
# got nothing (or lost k6's last push) waits this long.
FINAL_PUSH_WAIT_SECONDS = 15.0


def prometheus_series_check(prometheus: Querier) -> SeriesCheck:
    """A check against ``prometheus``; its ``PrometheusError`` reaches the caller."""

    async def check(tags: RunTags, start: float, end: float, iterations: float | None) -> bool:
        window = SLIWindow(
            project=tags.project,
            stage=tags.stage,
            service=tags.service,
            start_s=start,
            end_s=end,
            context=tags.context,
        )
        deadline = Deadline(FINAL_PUSH_WAIT_SECONDS)
        if not await poll_until(lambda: run_has_series(prometheus, window), deadline.remaining()):
            return False
        if iterations is not None:
            await _final_push_visible(prometheus, window, iterations, deadline)
        return True

    return check


async def _final_push_visible(
    prometheus: Querier, window: SLIWindow, iterations: float, deadline: Deadline
) -> None:
    query = run_iterations_query(window)
    seen: float | None = None

    async def all_there() -> bool:
        nonlocal seen
        try:
            seen = single_value(await prometheus.instant(query, window.end_s))
        except ValueFailure:
            seen = None  # not there yet
        return seen is not None and seen >= iterations

    if not await poll_until(all_there, deadline.remaining()):
        log.warning(
            "Prometheus shows %s of the run's %g iterations %g s after k6 exited; "
            "its last push may be lost",
            seen,
            iterations,
            FINAL_PUSH_WAIT_SECONDS,
        )
