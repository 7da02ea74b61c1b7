"""A throw-away single-node VictoriaMetrics on loopback that k6 can remote-write into.

Debian's ``victoria-metrics`` 1.79 is used as is, with the same object shape as
``devkit.prometheus.PrometheusServer`` (``url``, ``remote_write_url``, ``query``, ``log_tail``), so
a test can take either store through one fixture.

``latency_offset`` is VictoriaMetrics' ``-search.latencyOffset``: samples younger than it are left
out of query results. Its default (30 s) is what users meet, so it is the default here too; a
test that queries right after a run and is not about that delay must ask for a short offset and
say why.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import aiohttp

from devkit.ports import LOOPBACK
from devkit.prometheus import PrometheusError
from devkit.server_process import ServerProcess, answers_ok

BINARY = "victoria-metrics"
NOT_FOUND_MESSAGE = (
    "victoria-metrics not found on PATH: run `make setup` or apt-get install victoria-metrics"
)
DEFAULT_LATENCY_OFFSET = "30s"
SETTLE_POLL_INTERVAL = 0.1
# The periodic index update (~10 s) plus the default latency offset (30 s), with room.
SETTLE_DEADLINE = 60.0
_QUERY_TIMEOUT = 10.0


class VictoriaMetricsError(PrometheusError):
    """The devkit VictoriaMetrics did not start, or a query against it failed.

    A ``PrometheusError`` so that code handling either devkit store catches one class.
    """


class VictoriaMetricsServer(ServerProcess):
    """``async with VictoriaMetricsServer(tmp) as vm:`` a ready VictoriaMetrics at ``vm.url``."""

    store_name = "victoriametrics"
    program = BINARY
    not_found_message = NOT_FOUND_MESSAGE
    error = VictoriaMetricsError

    def __init__(
        self,
        data_dir: Path,
        *,
        latency_offset: str = DEFAULT_LATENCY_OFFSET,
        path_prefix: str = "",
        extra_args: Sequence[str] = (),
        binary: str | None = None,
    ) -> None:
        """``path_prefix`` is ``-http.pathPrefix`` (e.g. ``/vm``): every path, the query API and
        the write endpoint included, is served under it, as behind a path-routing proxy."""
        if path_prefix and (not path_prefix.startswith("/") or path_prefix.endswith("/")):
            raise ValueError(f"path_prefix must look like /name, got {path_prefix!r}")
        super().__init__(data_dir, binary)
        self._latency_offset = latency_offset
        self._path_prefix = path_prefix
        self._extra_args = tuple(extra_args)

    @property
    def latency_offset(self) -> str:
        return self._latency_offset

    @property
    def url(self) -> str:
        """The base URL the Prometheus query API is served under (what the SLI provider is given)."""
        return f"http://{LOOPBACK}:{self._running_port()}{self._path_prefix}"

    @property
    def prometheus_url(self) -> str:
        """The same API under VictoriaMetrics' ``/prometheus`` alias, as its docs show it."""
        return self.url + "/prometheus"

    @property
    def remote_write_url(self) -> str:
        return self.url + "/api/v1/write"

    async def query(self, promql: str, *, at: float | None = None) -> list[dict[str, Any]]:
        """Run an instant query; returns ``data.result`` (a list for vector results)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        timeout = aiohttp.ClientTimeout(total=_QUERY_TIMEOUT)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self.url + "/api/v1/query", params=params) as response,
        ):
            body = await response.json(content_type=None)
        if body.get("status") != "success":
            raise VictoriaMetricsError(f"query {promql!r} failed: {body.get('error', body)}")
        return cast(list[dict[str, Any]], body["data"]["result"])

    async def settle(self, *, deadline: float = SETTLE_DEADLINE) -> float:
        """Wait until every sample written before this call shows in query results; returns the
        seconds waited.

        VictoriaMetrics 1.79 makes new series searchable in batches, at a periodic index update
        (observed up to 11 s after a series' first sample, one metric of a run before another),
        and hides samples younger than the latency offset. So a marker series is written now and
        waited for: once it shows, so does every series and sample written before it.
        """
        marker = uuid.uuid4().hex
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=_QUERY_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            line = f'devkit_settle_marker{{marker="{marker}"}} 1\n'
            async with session.post(self.url + "/api/v1/import/prometheus", data=line) as response:
                if response.status >= 300:
                    raise VictoriaMetricsError(f"import failed: {response.status}")
            while not await self.query(
                f'last_over_time(devkit_settle_marker{{marker="{marker}"}}[5m])'
            ):
                if time.monotonic() - started > deadline:
                    raise VictoriaMetricsError(
                        f"a written sample did not show within {deadline:g} s"
                    )
                await asyncio.sleep(SETTLE_POLL_INTERVAL)
        return time.monotonic() - started

    def _argv(self, binary: str, port: int) -> list[str]:
        argv = [
            binary,
            f"-storageDataPath={self._data_dir / 'data'}",
            f"-httpListenAddr={LOOPBACK}:{port}",
            # The shortest retention it accepts; the data dir is thrown away anyway.
            "-retentionPeriod=1d",
            f"-search.latencyOffset={self._latency_offset}",
        ]
        if self._path_prefix:
            argv.append(f"-http.pathPrefix={self._path_prefix}")
        argv += self._extra_args
        return argv

    async def _is_ready(self, session: aiohttp.ClientSession) -> bool:
        return await answers_ok(session, self.url + "/health")
