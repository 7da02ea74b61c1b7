"""A path-routing proxy, to serve a store under the URL shapes of scale-out setups.

``PrefixProxy({"/select/0/prometheus": vm.url, "/insert/0/prometheus": vm.url})`` answers
``/select/0/prometheus/api/v1/query`` from ``vm.url + "/api/v1/query"``, the way VictoriaMetrics
cluster's vmselect and vminsert (or Mimir behind its gateway) lay out their paths. A path under no
prefix gets 404, as from a gateway that does not route it.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from devkit._http import ForwardingServer

# What a query or a remote write needs to arrive as sent (k6's write is snappy protobuf).
_FORWARDED_HEADERS = (
    "Content-Type",
    "Content-Encoding",
    "X-Prometheus-Remote-Write-Version",
    "Authorization",
    "X-Scope-OrgID",
)
_UPSTREAM_TIMEOUT = 30.0


class PrefixProxy(ForwardingServer):
    def __init__(self, routes: Mapping[str, str]) -> None:
        """``routes``: path prefix (``/a/b``) → upstream base URL the rest of the path goes to."""
        for prefix in routes:
            if not prefix.startswith("/") or prefix.endswith("/"):
                raise ValueError(f"a prefix looks like /name, not {prefix!r}")
        # Longest first, so /a/b wins over /a.
        self._routes = sorted(
            ((p, u.rstrip("/")) for p, u in routes.items()), key=lambda r: -len(r[0])
        )
        self.paths_seen: list[str] = []
        self.queries_seen: list[dict[str, str]] = []  # each request's URL parameters
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        super().__init__(app, upstream_timeout=_UPSTREAM_TIMEOUT)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.path
        self.paths_seen.append(path)
        self.queries_seen.append(dict(request.rel_url.query))
        route = next(
            ((p, u) for p, u in self._routes if path == p or path.startswith(p + "/")), None
        )
        if route is None:
            return web.Response(status=404, text=f"no route for {path}\n")
        prefix, upstream = route
        target = upstream + path[len(prefix) :]
        headers = {h: request.headers[h] for h in _FORWARDED_HEADERS if h in request.headers}
        body = await request.read()
        async with self.upstream_session.request(
            request.method,
            target,
            params=request.rel_url.query,
            data=body or None,
            headers=headers,
        ) as response:
            payload = await response.read()
            return web.Response(
                status=response.status,
                body=payload,
                headers={"Content-Type": response.headers.get("Content-Type", "text/plain")},
            )
