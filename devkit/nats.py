"""A real nats-server on loopback, as Keptn's control plane runs one (keptn-nats): with JetStream
on and a file store, like Keptn's helm values (keptn-delivery.md)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp

from devkit.ports import LOOPBACK, free_port

NOT_FOUND = "nats-server not found: run `make setup` or apt-get install nats-server"


def find_nats_server() -> str:
    for candidate in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise FileNotFoundError(NOT_FOUND)


class NatsServer:
    def __init__(self, log_path: Path, store_dir: Path | None = None) -> None:
        self._log_path = log_path
        # The store outlives a restart of the server when the caller names it.
        self._store_dir = store_dir or log_path.parent / "jetstream"
        self._process: asyncio.subprocess.Process | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self._port}"

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Stop the server (SIGSTOP) and let it go on afterwards (SIGCONT): connections stay
        open but nothing is answered, like a stalled server or network; clients' writes wait
        in the kernel's buffers and are processed on resume."""
        if self._process is None or self._process.returncode is not None:
            raise RuntimeError("nats-server is not running")
        self._process.send_signal(signal.SIGSTOP)
        try:
            await _stopped(self._process.pid)
            yield
        finally:
            self._process.send_signal(signal.SIGCONT)

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        """Stop the server for the body of the ``with`` (connections refused, as while Keptn's
        NATS restarts in a rollout), then start it again on the same port and store: clients
        reconnect, streams, consumers and buckets are as they were."""
        await self._stop()
        try:
            yield
        finally:
            await self._start(self._port)

    async def __aenter__(self) -> Self:
        await self._start(free_port())
        return self

    async def _start(self, port: int) -> None:
        self._port, monitor = port, free_port()
        with self._log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                find_nats_server(),
                "-a",
                LOOPBACK,
                "-p",
                str(self._port),
                "-m",
                str(monitor),
                "-js",
                "-sd",
                str(self._store_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while True:
                if self._process.returncode is not None:
                    raise RuntimeError(f"nats-server exited: {self._log_path.read_text()[-2000:]}")
                try:
                    async with session.get(f"http://{LOOPBACK}:{monitor}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("nats-server did not become healthy within 20 s")
                await asyncio.sleep(0.05)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _stopped(pid: int) -> None:
    """Wait until the kernel shows the process stopped: a signal is delivered asynchronously,
    and a server still running for a moment would answer what the test sends next."""
    stat = Path(f"/proc/{pid}/stat")
    async with asyncio.timeout(5):
        while True:
            # The state follows the parenthesised command name, which may contain spaces.
            state = (await asyncio.to_thread(stat.read_text)).rpartition(")")[2].split()[0]
            if state in {"T", "t"}:
                return
            await asyncio.sleep(0.01)
