"""Run the sli-provider app in this process on a free loopback port (tests, demo, bench)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from aiohttp import web

from devkit.ports import free_port
from sli_provider.config import Settings
from sli_provider.service.app import build_app, drain
from sli_provider.service.metrics import ServiceMetrics


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[str]:
    """Yield the service's base URL; on exit the app shuts down as it would on SIGTERM."""
    settings = replace(settings, host="127.0.0.1", port=free_port())
    app = build_app(settings, ServiceMetrics())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        yield f"http://{settings.host}:{settings.port}"
        await drain(app)
    finally:
        await runner.cleanup()
