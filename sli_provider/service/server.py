"""Running the app until SIGTERM or SIGINT, then shutting down in order."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from sli_provider.config import Settings
from sli_provider.service.app import build_app, drain

log = logging.getLogger(__name__)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (by a signal unless the caller passes its own event)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = build_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        log.info("listening on %s:%s", settings.host, settings.port)
        await stop.wait()
        log.info("shutting down")
        # Still listening while draining, so probes see /ready turn 503.
        await drain(app)
    finally:
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
