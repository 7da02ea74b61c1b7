"""The runner's "did Prometheus receive this run?" check, asked the way get-sli asks it."""

from __future__ import annotations

from sli_provider.adapters.prometheus import Querier
from sli_provider.k6.invocation import RunTags
from sli_provider.k6.series import run_has_series
from sli_provider.runner.core import SeriesCheck
from sli_provider.sli.window import SLIWindow


def prometheus_series_check(prometheus: Querier) -> SeriesCheck:
    """A check against ``prometheus``; its ``PrometheusError`` reaches the caller."""

    async def check(tags: RunTags, start: float, end: float) -> bool:
        window = SLIWindow(
            project=tags.project,
            stage=tags.stage,
            service=tags.service,
            start_s=start,
            end_s=end,
            context=tags.context,
        )
        return await run_has_series(prometheus, window)

    return check
