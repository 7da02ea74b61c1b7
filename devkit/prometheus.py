"""A throw-away Prometheus on loopback that k6 can remote-write into.

Debian's prometheus 2.42 is used as is; the flags follow k6-prometheus.md §1.2. Without the
receiver flag k6's writes get 404, and without native histograms a single histogram sample makes
Prometheus reject the whole batch; k6 exits 0 either way, so both are on by default.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import aiohttp
import yaml

from devkit.ports import LOOPBACK
from devkit.server_process import ServerProcess, answers_ok

NOT_FOUND_MESSAGE = "prometheus not found on PATH: run `make setup` or apt-get install prometheus"
_QUERY_TIMEOUT = 10.0


class PrometheusError(RuntimeError):
    """The devkit Prometheus did not start, or a query against it failed."""


class PrometheusServer(ServerProcess):
    """``async with PrometheusServer(tmp) as prom:`` a ready Prometheus at ``prom.url``."""

    store_name = "prometheus"
    program = "prometheus"
    not_found_message = NOT_FOUND_MESSAGE
    error = PrometheusError

    def __init__(
        self,
        data_dir: Path,
        *,
        remote_write_receiver: bool = True,
        native_histograms: bool = True,
        extra_args: Sequence[str] = (),
        binary: str | None = None,
        web_config: Mapping[str, Any] | None = None,
        client_ssl: ssl.SSLContext | None = None,
        client_auth: tuple[str, str] | None = None,
        retention: str = "2h",
    ) -> None:
        """``web_config`` is Prometheus' --web.config.file (TLS, basic auth); ``client_ssl`` and
        ``client_auth`` are what this object itself uses to reach the server. ``retention`` is
        --storage.tsdb.retention.time: blocks older than that, counted back from the newest
        sample (its own scrapes are at now), are deleted at the next reload."""
        super().__init__(data_dir, binary)
        self._web_config = dict(web_config) if web_config else None
        self._client_ssl = client_ssl
        self._client_headers = (
            {"Authorization": aiohttp.encode_basic_auth(*client_auth)} if client_auth else None
        )
        self._remote_write_receiver = remote_write_receiver
        self._native_histograms = native_histograms
        self._extra_args = tuple(extra_args)
        self._retention = retention

    @property
    def url(self) -> str:
        port = self._running_port()
        scheme = "https" if self._web_config and "tls_server_config" in self._web_config else "http"
        return f"{scheme}://{LOOPBACK}:{port}"

    @property
    def remote_write_url(self) -> str:
        return self.url + "/api/v1/write"

    @property
    def config_path(self) -> Path:
        return self._data_dir / "prometheus.yml"

    async def query(self, promql: str, *, at: float | None = None) -> list[dict[str, Any]]:
        """Run an instant query; returns ``data.result`` (a list for vector results)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        timeout = aiohttp.ClientTimeout(total=_QUERY_TIMEOUT)
        async with (
            self._session(timeout) as session,
            session.get(self.url + "/api/v1/query", params=params) as response,
        ):
            body = await response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"query {promql!r} failed: {body.get('error', body)}")
        return cast(list[dict[str, Any]], body["data"]["result"])

    async def settle(self) -> float:
        """Prometheus shows what it accepted at once: nothing to wait for (see devkit/victoria.py)."""
        return 0.0

    def _argv(self, binary: str, port: int) -> list[str]:
        argv = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self._data_dir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            f"--storage.tsdb.retention.time={self._retention}",
        ]
        if self._remote_write_receiver:
            argv.append("--web.enable-remote-write-receiver")
        if self._native_histograms:
            argv.append("--enable-feature=native-histograms")
        if self._web_config is not None:
            web_config_path = self._data_dir / "web-config.yml"
            web_config_path.write_text(yaml.safe_dump(self._web_config), encoding="utf-8")
            argv.append(f"--web.config.file={web_config_path}")
        argv += self._extra_args
        return argv

    def _prepare(self, port: int) -> None:
        # Self-scrape only, so process metrics (memory, head series) can be inspected.
        config = {
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "scrape_configs": [
                {"job_name": "prometheus", "static_configs": [{"targets": [f"{LOOPBACK}:{port}"]}]}
            ],
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    async def _is_ready(self, session: aiohttp.ClientSession) -> bool:
        return await answers_ok(session, self.url + "/-/ready")

    def _session(self, timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self._client_ssl) if self._client_ssl else None
        return aiohttp.ClientSession(
            timeout=timeout, connector=connector, headers=self._client_headers
        )
