"""One retry policy for every outbound call: exponential backoff with jitter, bounded tries, and
a deadline that holds across the tries (a per-try timeout alone lets tries times timeout add up)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

T = TypeVar("T")


class Deadline:
    """A point in (monotonic) time by which an operation, all its tries included, must end."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, timeout: float) -> float:
        """``timeout`` for one try, shortened to what is left of the deadline."""
        return min(timeout, self.remaining())


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    max_wait: float,
    retryable: Callable[[BaseException], bool],
    deadline: Deadline | None = None,
    on_retry: Callable[[BaseException, int], None] | None = None,
    min_wait: float = 0.1,
    server_wait: Callable[[BaseException], float | None] | None = None,
) -> T:
    """Run ``call`` until it succeeds, fails with a non-retryable error, or runs out of tries.

    With a ``deadline`` each try runs under what is left of it (TimeoutError when it passes),
    and no try is started whose backoff would reach past it. The last error is re-raised as it
    is, so callers see the real cause. Cancellation is never retried: tenacity only inspects
    ``Exception`` subclasses here.
    """

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            if error is not None:
                on_retry(error, state.attempt_number)

    backoff = wait_random_exponential(multiplier=min_wait, max=max_wait)

    def wait(state: RetryCallState) -> float:
        # A server that says when to come back (Retry-After) is believed, up to max_wait.
        error = state.outcome.exception() if state.outcome is not None else None
        asked = server_wait(error) if server_wait is not None and error is not None else None
        return min(asked, max_wait) if asked is not None else backoff(state)

    out_of_tries = stop_after_attempt(attempts)

    def stop(state: RetryCallState) -> bool:
        # tenacity computes the coming sleep before it asks whether to stop.
        out_of_time = deadline is not None and deadline.remaining() <= state.upcoming_sleep
        return out_of_time or out_of_tries(state)

    retrying = AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception(lambda e: isinstance(e, Exception) and retryable(e)),
        before_sleep=before_sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            if deadline is None:
                return await call()
            async with asyncio.timeout(deadline.remaining()):
                return await call()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
