"""A remote-write relay that accepts k6's pushes at once and delivers them late, in order.

As an agent with a send queue (Grafana Agent, vmagent) does under load: k6 sees its push
accepted and exits, while the store gets the last pushes ``delay`` seconds later. So a get-sli
sent right after k6 exits meets a run whose final push is not yet visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

from devkit._http import ForwardingServer

_FORWARD_TIMEOUT = 10.0
_KEPT_HEADERS = ("Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version")


class DelayedRemoteWrite(ForwardingServer):
    """``async with DelayedRemoteWrite(store.remote_write_url, delay=3) as relay``: k6 writes
    to ``relay.url``; each push reaches the store ``delay`` seconds after it came."""

    def __init__(self, upstream_write_url: str, *, delay: float) -> None:
        self.upstream = upstream_write_url
        self.delay = delay
        self.delivered = 0
        self.failures: list[str] = []  # what the store answered instead of 2xx
        self._queue: asyncio.Queue[tuple[float, bytes, dict[str, str]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/v1/write", self._accept)
        super().__init__(app, upstream_timeout=_FORWARD_TIMEOUT)

    @property
    def write_url(self) -> str:
        return self.url + "/api/v1/write"

    async def __aenter__(self) -> Self:
        self._worker = asyncio.create_task(self._deliver())
        return await super().__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The worker goes first: it sends through the upstream session the base class closes.
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await super().__aexit__(exc_type, exc, tb)

    async def delivered_all(self, timeout: float) -> None:
        """Wait until every accepted push reached the store."""
        async with asyncio.timeout(timeout):
            await self._queue.join()

    async def _accept(self, request: web.Request) -> web.Response:
        headers = {k: request.headers[k] for k in _KEPT_HEADERS if k in request.headers}
        self._queue.put_nowait((time.monotonic() + self.delay, await request.read(), headers))
        return web.Response(status=204)

    async def _deliver(self) -> None:
        while True:
            due, body, headers = await self._queue.get()
            try:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                async with self.upstream_session.post(
                    self.upstream, data=body, headers=headers
                ) as sent:
                    if sent.status >= 300:
                        self.failures.append(f"HTTP {sent.status}: {(await sent.text())[:200]}")
                self.delivered += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.failures.append(repr(exc))
            finally:
                self._queue.task_done()
