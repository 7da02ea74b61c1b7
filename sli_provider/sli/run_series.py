"""Whether Prometheus holds the series of one k6 run: asked by the SLI evaluation (to prefer the
run's own series) and by the runner (k6 exits 0 even when its remote write failed)."""

from __future__ import annotations

from sli_provider.ports.querier import Querier
from sli_provider.sli.plan import run_series_queries
from sli_provider.sli.window import SLIWindow


async def run_has_series(prometheus: Querier, window: SLIWindow) -> bool:
    """Whether Prometheus holds k6 series of the run ``window.context`` in the window."""
    for query in run_series_queries(window):
        if await prometheus.instant(query, window.end_s):
            return True
    return False
