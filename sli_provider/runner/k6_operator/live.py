"""abortOnFail for the whole test: a running TestRun's abortOnFail thresholds judged every few
seconds on its runners' merged metrics in the store.

A runner judging its own segment would stop only itself, on its share alone; so runners do not
judge thresholds (``--no-thresholds``) and this judge watches the whole test instead. k6 starts
counting ``delayAbortEval`` when the test starts; here the clock starts when the run's first
series appear in the store (its runners' first push, a push interval after the start). Each
check is one query per due threshold (a few for a percentile: bench/README.md has the cost).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from sli_provider.k6.invocation import RunTags
from sli_provider.k6.thresholds import ThresholdSpec
from sli_provider.ports.querier import PrometheusError, Querier
from sli_provider.runner.k6_operator.whole_test import Judged, WholeTest
from sli_provider.sli.run_series import run_has_series
from sli_provider.sli.window import SLIWindow

log = logging.getLogger(__name__)


class LiveJudge:
    def __init__(
        self,
        store: Querier,
        tags: RunTags,
        thresholds: Sequence[ThresholdSpec],
        started_at: float,
        interval: float,
    ) -> None:
        self._store = store
        self._tags = tags
        self._thresholds = [t for t in thresholds if t.abort_on_fail]
        self._started_at = started_at
        self._interval = interval
        self.checks = 0  # how many times the thresholds were judged (for the bench)

    def _window(self, now: float) -> SLIWindow:
        return SLIWindow(
            project=self._tags.project,
            stage=self._tags.stage,
            service=self._tags.service,
            start_s=self._started_at,
            end_s=now,
            context=self._tags.context,
        )

    async def first_crossing(self) -> Judged:
        """The first abortOnFail threshold the whole test crosses (with its value then); waits
        for ever when there is none. A store that fails is asked again at the next check."""
        if not self._thresholds:
            await asyncio.Event().wait()
        first_seen: float | None = None
        while True:
            await asyncio.sleep(self._interval)
            now = time.time()
            window = self._window(now)
            try:
                if first_seen is None:
                    if await run_has_series(self._store, window):
                        first_seen = now
                    continue
                due = [t for t in self._thresholds if now - first_seen >= t.delay_abort_eval_s]
                if not due:
                    continue
                self.checks += 1
                judged = await WholeTest(self._store, window).judge(due)
            except PrometheusError as exc:
                log.warning("cannot judge the abortOnFail thresholds now: %s", exc)
                continue
            for verdict in judged:
                if verdict.value is not None and not verdict.held:
                    return verdict
