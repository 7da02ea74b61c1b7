"""A multi-tenant gateway in front of a real Prometheus, as Mimir/Cortex/Thanos setups have one.

It lets a request through only with the right ``X-Scope-OrgID`` and bearer token, and records
what it saw, so tests can check the headers the service sends.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from aiohttp import web

from devkit._http import ForwardingServer


class TenantGateway(ForwardingServer):
    def __init__(self, upstream: str, *, tenant: str | None, token: str | None) -> None:
        """``tenant``/``token`` None: no check (a plain proxy, e.g. for failure injection)."""
        self.upstream = upstream.rstrip("/")
        self.tenant = tenant
        self.token = token  # tests may rotate it
        # (status, Retry-After) to answer instead of forwarding, in order
        self._failures: list[tuple[int, str | None]] = []
        self.seen: list[dict[str, str]] = []
        self.paths_seen: list[str] = []  # path and query string, in the order of ``seen``
        # Queries containing one of these texts get no answer until the gateway closes.
        self._held_texts: list[str] = []
        self._release = asyncio.Event()
        self._closing = False
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        super().__init__(app, upstream_timeout=30.0)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        self._release.set()
        await super().__aexit__(exc_type, exc, tb)

    def fail_next(self, status: int, times: int, *, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` instead of forwarding them."""
        self._failures.extend([(status, retry_after)] * times)

    def hold_queries_containing(self, text: str) -> None:
        """Never answer a query whose PromQL contains ``text`` (like a Prometheus stuck on
        it) until the gateway closes or :meth:`release_queries` is called."""
        self._held_texts.append(text)

    def release_queries(self) -> None:
        """Forward the held queries after all, and hold no more."""
        self._held_texts.clear()
        self._release.set()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.seen.append({k.lower(): v for k, v in request.headers.items()})
        self.paths_seen.append(request.rel_url.path_qs)
        query = request.rel_url.query.get("query", "")
        if any(text in query for text in self._held_texts):
            await self._release.wait()
            if self._closing:
                return web.Response(status=503, text="the gateway closed\n")
        if self.tenant is not None and request.headers.get("X-Scope-OrgID") != self.tenant:
            return web.Response(status=401, text="no org id\n")
        if (
            self.token is not None
            and request.headers.get("Authorization") != f"Bearer {self.token}"
        ):
            return web.Response(status=401, text="bad token\n")
        if self._failures:
            status, retry_after = self._failures.pop(0)
            return web.json_response(
                {"status": "error", "errorType": "unavailable", "error": "injected failure"},
                status=status,
                headers={"Retry-After": retry_after} if retry_after else None,
            )
        body = await request.read()
        async with self.upstream_session.request(
            request.method,
            self.upstream + request.rel_url.path_qs,
            data=body or None,
            headers={"Content-Type": request.headers.get("Content-Type", "text/plain")},
        ) as upstream:
            payload = await upstream.read()
            return web.Response(
                status=upstream.status,
                body=payload,
                content_type=upstream.content_type,
            )
