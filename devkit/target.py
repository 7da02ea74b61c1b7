"""A tiny HTTP service for k6 to load: fast, failing and slow endpoints on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from devkit._http import LoopbackServer

OK_BODY = "ok: sli-provider devkit target\n"
FAIL_BODY = "unavailable: injected failure\n"
# Bounds a single /slow request so a typo in a script cannot park k6 VUs for hours.
MAX_SLOW_MS = 60_000


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text=OK_BODY)


async def _fail(_request: web.Request) -> web.Response:
    return web.Response(status=503, text=FAIL_BODY)


async def _slow(request: web.Request) -> web.Response:
    try:
        delay_ms = int(request.query.get("ms", "0"))
    except ValueError:
        return web.Response(status=400, text="ms must be an integer\n")
    if not 0 <= delay_ms <= MAX_SLOW_MS:
        return web.Response(status=400, text=f"ms must be within 0..{MAX_SLOW_MS}\n")
    await asyncio.sleep(delay_ms / 1000)
    return web.Response(text=OK_BODY)


def make_app(on_served: Callable[[float], None] | None = None) -> web.Application:
    """The target's routes; ``on_served`` gets the arrival time of every answered request."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived = time.time()
        response = await handler(request)
        if on_served is not None:
            on_served(arrived)
        return response

    app = web.Application(middlewares=[record])
    app.router.add_get("/", _ok)
    app.router.add_get("/fail", _fail)
    app.router.add_get("/slow", _slow)
    return app


class TargetServer(LoopbackServer):
    """``async with TargetServer() as target: target.url`` serves /, /fail and /slow?ms=N.

    It counts what it answers, so a test has a count of requests that neither k6 nor the
    service produced (k6's ``http_reqs`` counts every answered request, failed ones included).
    """

    def __init__(self) -> None:
        self._served_at: list[float] = []
        super().__init__(make_app(self._served_at.append))

    @property
    def requests_served(self) -> int:
        """Requests answered since the server started, on every path and with any status."""
        return len(self._served_at)

    def served_between(self, start: float, end: float) -> int:
        """Answered requests that arrived within [start, end] (unix seconds)."""
        return sum(1 for arrived in self._served_at if start <= arrived <= end)
