"""A tiny HTTP service for k6 to load: fast, failing and slow endpoints on loopback."""

from __future__ import annotations

import asyncio

from aiohttp import web

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


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", _ok)
    app.router.add_get("/fail", _fail)
    app.router.add_get("/slow", _slow)
    return app


class TargetServer(LoopbackServer):
    """``async with TargetServer() as target: target.url`` serves /, /fail and /slow?ms=N."""

    def __init__(self) -> None:
        super().__init__(make_app())
