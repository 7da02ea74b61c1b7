"""Serve an aiohttp application on an ephemeral loopback port."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

from devkit.ports import LOOPBACK

# Clients such as k6 keep connections alive; do not let them hold up shutdown.
_SHUTDOWN_TIMEOUT = 2.0


class LoopbackSite:
    """Owns the runner of one aiohttp app bound to 127.0.0.1 on a port the kernel picks."""

    def __init__(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        self._url: str | None = None
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("server is not running")
        return self._url

    async def start(self) -> str:
        await self._runner.setup()
        try:
            # Binding port 0 here avoids the race of asking for a free port first.
            site = web.TCPSite(self._runner, LOOPBACK, 0)
            await site.start()
            port = self._runner.addresses[0][1]
        except BaseException:
            await self._runner.cleanup()
            raise
        self._site = site
        self._url = f"http://{LOOPBACK}:{port}"
        return self._url

    async def close_port(self) -> None:
        """Stop listening (new connections are refused, as while a pod restarts); the port
        stays this server's to :meth:`reopen_port`."""
        if self._site is not None:
            await self._site.stop()

    async def reopen_port(self) -> None:
        port = int(self.url.rpartition(":")[2])
        self._site = web.TCPSite(self._runner, LOOPBACK, port, reuse_address=True)
        await self._site.start()

    async def stop(self) -> None:
        self._url = None
        await self._runner.cleanup()


class LoopbackServer:
    """Base of the devkit's HTTP servers: ``async with Server(...) as server: server.url``."""

    def __init__(self, app: web.Application) -> None:
        self._site = LoopbackSite(app)

    @property
    def url(self) -> str:
        return self._site.url

    async def __aenter__(self) -> Self:
        await self._site.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._site.stop()


class ForwardingServer(LoopbackServer):
    """A loopback server that passes requests on upstream through a client session of its own,
    open while the server is (the devkit's gateways, proxies and relays)."""

    def __init__(self, app: web.Application, *, upstream_timeout: float) -> None:
        super().__init__(app)
        self._upstream_timeout = upstream_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def upstream_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("server is not running")
        return self._session

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._upstream_timeout)
        )
        return await super().__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc, tb)
        finally:
            if self._session is not None:
                await self._session.close()
                self._session = None
