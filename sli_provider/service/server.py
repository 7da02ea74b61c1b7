"""Running the app until SIGTERM or SIGINT, then shutting down in order."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from sli_provider.errors import SliProviderError
from sli_provider.service.app import build_app, drain
from sli_provider.service.heap import freeze_startup_heap
from sli_provider.wiring import Configuration

log = logging.getLogger(__name__)


class ListenError(SliProviderError):
    """The address cannot be listened on (taken, or not this host's)."""


async def serve(configuration: Configuration, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (by a signal unless the caller passes its own event)."""
    settings = configuration.settings
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = build_app(configuration)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            where = f"{settings.host}:{settings.port}"
            raise ListenError(f"cannot listen on {where} (HOST, PORT): {reason}") from None
        log.info("listening on %s:%s", settings.host, settings.port)
        frozen = freeze_startup_heap()
        log.debug("%d objects of the start-up heap frozen", frozen)
        await stop.wait()
        log.info("shutting down")
        # Still listening while draining, so probes see /ready turn 503.
        await drain(app)
    finally:
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
