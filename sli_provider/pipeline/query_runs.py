"""Indicator queries started as soon as they are known, each distinct query once.

The evaluation starts the queries that do not depend on the run-series check while that check is
still out, and the rest once it answers; this owns all of their tasks, so none outlives the
request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Generic, TypeVar

Query = TypeVar("Query", bound=Hashable)
Answer = TypeVar("Answer")


class QueryRuns(Generic[Query, Answer]):
    """At most ``concurrency`` queries at a time; use as ``async with``, which ends every task."""

    def __init__(self, run_one: Callable[[Query], Awaitable[Answer]], concurrency: int) -> None:
        self._run_one = run_one
        self._semaphore = asyncio.Semaphore(concurrency)
        self._tasks: dict[Query, asyncio.Task[Answer]] = {}
        self._began: float | None = None

    async def __aenter__(self) -> QueryRuns[Query, Answer]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        tasks = list(self._tasks.values())
        await self._end(tasks)
        for task in tasks:  # a failure nobody asked for (the request failed first) is dropped
            if not task.cancelled():
                task.exception()

    def start(self, queries: Iterable[Query]) -> None:
        """Start those of ``queries`` not started yet; they run until answered or ended."""
        for query in queries:
            if query not in self._tasks:
                if self._began is None:
                    self._began = time.perf_counter()
                self._tasks[query] = asyncio.create_task(self._limited(query))

    def seconds_running(self) -> float:
        return time.perf_counter() - self._began if self._began is not None else 0.0

    async def answers(
        self, queries: Sequence[Query], timeout: float | None
    ) -> tuple[dict[Query, Answer], list[Query]]:
        """The answers of ``queries`` (started here if need be) within ``timeout`` seconds, and
        those still unanswered then, which are ended. A query that fails ends the others and
        its error is raised, as a TaskGroup would, but as itself rather than in a group."""
        self.start(queries)
        wanted = list(dict.fromkeys(queries))
        tasks = [self._tasks[q] for q in wanted]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
        if failed:
            await self._end(tasks)
            error = failed[0].exception()
            assert error is not None
            raise error
        late = [q for q, t in zip(wanted, tasks, strict=True) if not t.done()]
        await self._end(tasks)
        answered = {q: t.result() for q, t in zip(wanted, tasks, strict=True) if q not in late}
        return answered, late

    async def _limited(self, query: Query) -> Answer:
        async with self._semaphore:
            return await self._run_one(query)

    @staticmethod
    async def _end(tasks: Sequence[asyncio.Task[Answer]]) -> None:
        """Cancel what still runs and wait until it has stopped; a cancellation of the caller
        still ends the wait (asyncio.wait does not swallow it)."""
        pending = [t for t in tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
