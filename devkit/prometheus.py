"""A throw-away Prometheus on loopback that k6 can remote-write into.

Debian's prometheus 2.42 is used as is; the flags follow k6-prometheus.md §1.2. Without the
receiver flag k6's writes get 404, and without native histograms a single histogram sample makes
Prometheus reject the whole batch; k6 exits 0 either way, so both are on by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, cast

import aiohttp
import yaml

from devkit.ports import LOOPBACK, free_port

NOT_FOUND_MESSAGE = "prometheus not found on PATH: run `make setup` or apt-get install prometheus"
READY_POLL_INTERVAL = 0.05
READY_DEADLINE = 30.0
STOP_GRACE = 10.0
_READY_REQUEST_TIMEOUT = 1.0
_QUERY_TIMEOUT = 10.0
_LOG_TAIL_LINES = 20
# free_port() can lose a race with another process; Prometheus then exits at once.
_PORT_ATTEMPTS = 3


class PrometheusError(RuntimeError):
    """The devkit Prometheus did not start, or a query against it failed."""


class _PortTaken(PrometheusError):
    pass


class PrometheusServer:
    """``async with PrometheusServer(tmp) as prom:`` a ready Prometheus at ``prom.url``."""

    store_name = "prometheus"

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
    ) -> None:
        """``web_config`` is Prometheus' --web.config.file (TLS, basic auth); ``client_ssl`` and
        ``client_auth`` are what this object itself uses to reach the server."""
        self._data_dir = data_dir
        self._web_config = dict(web_config) if web_config else None
        self._client_ssl = client_ssl
        self._client_headers = (
            {"Authorization": aiohttp.encode_basic_auth(*client_auth)} if client_auth else None
        )
        self._remote_write_receiver = remote_write_receiver
        self._native_histograms = native_histograms
        self._extra_args = tuple(extra_args)
        self._binary = binary
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("prometheus is not running")
        scheme = "https" if self._web_config and "tls_server_config" in self._web_config else "http"
        return f"{scheme}://{LOOPBACK}:{self._port}"

    @property
    def remote_write_url(self) -> str:
        return self.url + "/api/v1/write"

    @property
    def log_path(self) -> Path:
        return self._data_dir / "prometheus.log"

    @property
    def config_path(self) -> Path:
        return self._data_dir / "prometheus.yml"

    async def __aenter__(self) -> Self:
        binary = self._binary or shutil.which("prometheus")
        if binary is None or shutil.which(binary) is None:
            raise FileNotFoundError(NOT_FOUND_MESSAGE)
        self._data_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(_PORT_ATTEMPTS):
            try:
                await self._start(binary, free_port())
            except _PortTaken:
                continue
            return self
        raise PrometheusError(
            f"no free port found in {_PORT_ATTEMPTS} attempts; see {self.log_path}"
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

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

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _argv(self, binary: str, port: int) -> list[str]:
        argv = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self._data_dir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--storage.tsdb.retention.time=2h",
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

    def _write_config(self, port: int) -> None:
        # Self-scrape only, so process metrics (memory, head series) can be inspected.
        config = {
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "scrape_configs": [
                {"job_name": "prometheus", "static_configs": [{"targets": [f"{LOOPBACK}:{port}"]}]}
            ],
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    async def _start(self, binary: str, port: int) -> None:
        self._write_config(port)
        self._log = self.log_path.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self._argv(binary, port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=self._log,
                stderr=asyncio.subprocess.STDOUT,
            )
            self._port = port
            await self._wait_ready()
        except BaseException:
            await self._stop()
            raise

    async def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + READY_DEADLINE
        timeout = aiohttp.ClientTimeout(total=_READY_REQUEST_TIMEOUT)
        async with self._session(timeout) as session:
            while True:
                if self._process.returncode is not None:
                    tail = self.log_tail()
                    if "address already in use" in tail:
                        raise _PortTaken(tail)
                    raise PrometheusError(
                        f"prometheus exited with code {self._process.returncode} before it was "
                        f"ready; last lines of {self.log_path}:\n{tail}"
                    )
                if await _is_ready(session, self.url):
                    return
                if time.monotonic() > deadline:
                    raise PrometheusError(
                        f"prometheus not ready after {READY_DEADLINE:g} s; last lines of "
                        f"{self.log_path}:\n{self.log_tail()}"
                    )
                await asyncio.sleep(READY_POLL_INTERVAL)

    def _session(self, timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self._client_ssl) if self._client_ssl else None
        return aiohttp.ClientSession(
            timeout=timeout, connector=connector, headers=self._client_headers
        )

    async def _stop(self) -> None:
        process, self._process, self._port = self._process, None, None
        try:
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                try:
                    async with asyncio.timeout(STOP_GRACE):
                        await process.wait()
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


async def _is_ready(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url + "/-/ready") as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False
