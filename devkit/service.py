"""Run the sli-provider: in this process, or as a real `sli-provider serve` child process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
from aiohttp import web

from devkit.cli import command_env, sli_provider_command
from devkit.ports import free_port
from sli_provider.config import Settings
from sli_provider.metrics import ServiceMetrics
from sli_provider.service.app import build_app, drain
from sli_provider.wiring import load_configuration


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[str]:
    """Yield the service's base URL; on exit the app shuts down as it would on SIGTERM."""
    settings = replace(settings, host="127.0.0.1", port=free_port())
    app = build_app(load_configuration(settings), ServiceMetrics())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        yield f"http://{settings.host}:{settings.port}"
        await drain(app)
    finally:
        await runner.cleanup()


@dataclass
class ServiceProcess:
    process: asyncio.subprocess.Process
    url: str

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            return response.status, await response.text()


@asynccontextmanager
async def serve_process(
    env: Mapping[str, str], log_path: Path, *, cwd: Path | None = None
) -> AsyncIterator[ServiceProcess]:
    """``sli-provider serve`` as its own process (in ``cwd``), healthy on yield; stopped with
    SIGTERM on exit (like Kubernetes stops a pod), killed if it does not exit within 30 s."""
    port = free_port()
    child_env = {"PATH": os.environ.get("PATH", ""), **env, "PORT": str(port), "HOST": "127.0.0.1"}
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *sli_provider_command("serve"),
            env=command_env(child_env),
            stdout=log,
            stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=cwd,
        )
    service = ServiceProcess(process, f"http://127.0.0.1:{port}")
    try:
        await _wait_healthy(service)
        yield service
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_healthy(service: ServiceProcess) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if service.process.returncode is not None:
            raise RuntimeError(f"sli-provider exited with {service.process.returncode} at start")
        try:
            if (await service.get("/health"))[0] == 200:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError("sli-provider did not become healthy within 30 s")
