"""The lifecycle the devkit's metrics stores share: a server binary started on a free loopback
port, waited for until it answers, stopped with a grace period, its output kept in a log file
whose last lines explain a failure.

``free_port()`` can lose a race with another process; the server then exits at once saying the
address is in use, and the start is tried again on another port.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self

import aiohttp

from devkit.ports import free_port

READY_POLL_INTERVAL = 0.05
READY_DEADLINE = 30.0
STOP_GRACE = 10.0
_READY_REQUEST_TIMEOUT = 1.0
_LOG_TAIL_LINES = 20
_PORT_ATTEMPTS = 3


class _PortTaken(Exception):
    pass


class ServerProcess:
    """Base of ``async with Store(data_dir) as store:``; subclasses say how to start and ask it."""

    # The program's name in messages and its log file's stem; the default binary on PATH.
    program: ClassVar[str]
    not_found_message: ClassVar[str]
    # What start-up failures raise (each store has its own error class).
    error: ClassVar[type[RuntimeError]]

    def __init__(self, data_dir: Path, binary: str | None) -> None:
        self._data_dir = data_dir
        self._binary = binary
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    @property
    def log_path(self) -> Path:
        return self._data_dir / f"{self.program}.log"

    def _argv(self, binary: str, port: int) -> list[str]:
        raise NotImplementedError

    def _prepare(self, port: int) -> None:
        """Write what the server reads at start for ``port`` (its config file), if anything."""

    async def _is_ready(self, session: aiohttp.ClientSession) -> bool:
        raise NotImplementedError

    def _session(self, timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=timeout)

    def _running_port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.program} is not running")
        return self._port

    async def __aenter__(self) -> Self:
        binary = self._binary or shutil.which(self.program)
        if binary is None or shutil.which(binary) is None:
            raise FileNotFoundError(self.not_found_message)
        self._data_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(_PORT_ATTEMPTS):
            try:
                await self._start(binary, free_port())
            except _PortTaken:
                continue
            return self
        raise self.error(f"no free port found in {_PORT_ATTEMPTS} attempts; see {self.log_path}")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def _start(self, binary: str, port: int) -> None:
        self._prepare(port)
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
                    raise self.error(
                        f"{self.program} exited with code {self._process.returncode} before it "
                        f"was ready; last lines of {self.log_path}:\n{tail}"
                    )
                if await self._is_ready(session):
                    return
                if time.monotonic() > deadline:
                    raise self.error(
                        f"{self.program} not ready after {READY_DEADLINE:g} s; last lines of "
                        f"{self.log_path}:\n{self.log_tail()}"
                    )
                await asyncio.sleep(READY_POLL_INTERVAL)

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


async def answers_ok(session: aiohttp.ClientSession, url: str) -> bool:
    """Whether ``url`` answers 200 now (a readiness or health endpoint)."""
    try:
        async with session.get(url) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False
