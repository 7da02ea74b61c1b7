"""Waiting, bounded, until the store shows k6's last push of a run.

Two callers want this: the runner before it reports a run (it knows k6's iteration count) and
the get-sli evaluation before it queries (it knows only the window; sli/freshness.py judges).
Both poll the same way, with :func:`poll_until`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sli_provider.ports.querier import Querier
from sli_provider.sli.freshness import (
    RUN_SERIES_NAMES_LIST,
    Verdict,
    freshness_queries,
    judge,
    read_sighting,
    window_check_names,
)
from sli_provider.sli.window import SLIWindow

POLL_SECONDS = 0.1


async def poll_until(
    ready: Callable[[], Awaitable[bool]], seconds: float, interval: float = POLL_SECONDS
) -> bool:
    """Ask ``ready`` until it says yes or ``seconds`` have passed (it is asked at least once);
    whether it said yes."""
    deadline = time.monotonic() + seconds
    while True:
        if await ready():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(interval, left))


@dataclass(frozen=True)
class Freshness:
    """How the wait for a run's final push went."""

    waited_seconds: float = 0.0
    final: bool = True
    reason: str = ""  # the last reason it was not final
    # Whether the window holds the run's series, as the last freshness query saw it (None: not
    # asked, or its count cannot tell): the run-series check's answer, so a final run asks
    # nothing more.
    run_in_window: bool | None = None

    def note(self, limit_seconds: float) -> str:
        """For the reply's message: nothing when there was no wait."""
        if self.final and self.waited_seconds == 0:
            return ""
        if self.final:
            return (
                f"waited {self.waited_seconds:.1f} s until the store showed k6's last push of "
                "the run"
            )
        return (
            f"k6's last push of the run was still not visible after waiting "
            f"{self.waited_seconds:.1f} s (FRESHNESS_WAIT_SECONDS={limit_seconds:g} or the "
            f"get-sli deadline): {self.reason}; the values are what the store held then"
        )


async def wait_for_final_push(prometheus: Querier, window: SLIWindow, seconds: float) -> Freshness:
    """Poll the freshness queries (asked once when the data is already final) for up to
    ``seconds``. A ``PrometheusError`` reaches the caller."""
    store = await prometheus.store_kind()
    counted = window_check_names(store.hides_recent_seconds)
    queries = freshness_queries(window, counted)
    began = time.monotonic()
    verdict = Verdict(True)
    in_window: bool | None = None

    async def final() -> bool:
        nonlocal verdict, in_window
        now = time.time()
        try:
            async with asyncio.TaskGroup() as group:  # one failing cancels the other
                live = group.create_task(prometheus.instant(queries.live, now))
                shown = group.create_task(prometheus.instant(queries.in_window, window.end_s))
        except* Exception as errors:  # the caller handles the store's own errors, one at a time
            raise errors.exceptions[0] from None
        sighting = read_sighting(live.result(), shown.result())
        verdict = judge(window, sighting, now, hides_recent_seconds=store.hides_recent_seconds)
        # Absent from a partial count, the run may still be in the window: the run-series check
        # tells.
        partial = len(counted) < len(RUN_SERIES_NAMES_LIST)
        in_window = True if sighting.in_window else (None if partial else False)
        return verdict.final

    if await final():
        return Freshness(run_in_window=in_window)
    done = await poll_until(final, max(0.0, seconds - (time.monotonic() - began)))
    waited = round(time.monotonic() - began, 3)
    return Freshness(waited, done, "" if done else verdict.reason, in_window)
