"""One retry policy for every outbound call: exponential backoff with jitter, bounded tries."""

from __future__ import annotations

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


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    max_wait: float,
    retryable: Callable[[BaseException], bool],
    on_retry: Callable[[BaseException, int], None] | None = None,
    min_wait: float = 0.1,
    server_wait: Callable[[BaseException], float | None] | None = None,
) -> T:
    """Run ``call`` until it succeeds, fails with a non-retryable error, or runs out of tries.

    The last error is re-raised as it is, so callers see the real cause. Cancellation is never
    retried: tenacity only inspects ``Exception`` subclasses here.
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

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=retry_if_exception(lambda e: isinstance(e, Exception) and retryable(e)),
        before_sleep=before_sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
