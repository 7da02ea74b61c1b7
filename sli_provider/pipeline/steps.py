"""The evaluation's steps against the get-sli deadline, and the errors that end a request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from sli_provider.adapters.retry import Deadline
from sli_provider.errors import SliProviderError

T = TypeVar("T")


class ProviderUnavailable(SliProviderError):
    """The provider cannot work at all for this request: errored/fail, not per indicator."""


class SLIConfigInvalid(ProviderUnavailable):
    """The sli.yaml that applies cannot be parsed: the request's configuration, not the provider."""


async def within(deadline: Deadline | None, step: Awaitable[T], doing: str) -> T:
    """``step`` before the deadline; past it there is no value to answer with at all."""
    if deadline is None:
        return await step
    limit = asyncio.timeout(deadline.remaining())
    try:
        async with limit:
            return await step
    except TimeoutError:
        if not limit.expired():
            raise
        raise ProviderUnavailable(
            f"the get-sli deadline of {deadline.seconds:g} s passed while {doing}"
        ) from None


async def end_task(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` if it still runs and wait until it has; a failure of a task nobody
    needs any more is moot, so it is retrieved and dropped."""
    if not task.done():
        task.cancel()
        await asyncio.wait([task])
    if not task.cancelled():
        task.exception()
