"""Run one k6 process to completion, streaming its output, and never leave it behind.

k6 runs in its own process group so that a timeout or a cancelled caller can kill everything it
started with one signal, without touching the service's own group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sli_provider.errors import SliProviderError
from sli_provider.k6.invocation import K6Invocation

_READ_CHUNK = 64 * 1024
# A single console.log of a large object can be one huge line; cap what is kept of it.
_MAX_LINE_BYTES = 16 * 1024
# After SIGKILL the exit is immediate; these only bound pathological cases (e.g. a grandchild
# that escaped the group and still holds the pipe open).
_REAP_TIMEOUT = 5.0
_DRAIN_TIMEOUT = 2.0


class K6Error(SliProviderError):
    """k6 could not be run to completion."""


class K6Timeout(K6Error, TimeoutError):
    """k6 ran longer than allowed and was killed; ``output_tail`` holds its last lines."""

    def __init__(self, timeout: float, output_tail: tuple[str, ...]) -> None:
        super().__init__(f"k6 did not finish within {timeout:g} s and was killed")
        self.timeout = timeout
        self.output_tail = output_tail


@dataclass(frozen=True)
class K6Outcome:
    """How a k6 run ended. ``started_at``/``ended_at`` are unix seconds around the process."""

    returncode: int
    started_at: float
    ended_at: float
    output_tail: tuple[str, ...]


async def run_k6(
    invocation: K6Invocation,
    *,
    # An own deadline rather than the caller's asyncio.timeout: expiry must become K6Timeout
    # with the output tail, which a bare cancellation cannot carry.
    timeout: float,
    cwd: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    tail_lines: int = 40,
) -> K6Outcome:
    """Run k6 and wait for it; kill its process group on timeout, error or cancellation."""
    tail: deque[str] = deque(maxlen=max(tail_lines, 0))
    started_at = time.time()
    process = await asyncio.create_subprocess_exec(
        *invocation.argv,
        env=dict(invocation.env),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    reader = asyncio.create_task(_pump_lines(process.stdout, tail, on_line))
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            # asyncio.wait does not cancel the reader when the deadline hits, so the lines
            # still buffered in the pipe end up in the tail after the kill.
            await asyncio.wait({reader})
            reader.result()
            returncode = await process.wait()
    except TimeoutError:
        await _kill_and_reap(process, reader)
        if deadline.expired():
            raise K6Timeout(timeout, tuple(tail)) from None
        raise
    except BaseException:
        await _kill_and_reap(process, reader)
        raise
    ended_at = time.time()
    return K6Outcome(
        returncode=returncode,
        started_at=started_at,
        ended_at=ended_at,
        output_tail=tuple(tail),
    )


async def _pump_lines(
    stream: asyncio.StreamReader,
    tail: deque[str],
    on_line: Callable[[str], None] | None,
) -> None:
    # StreamReader.readline() raises on lines over its 64 KiB limit; splitting chunks by hand
    # keeps draining the pipe whatever k6 prints, so k6 never blocks on a full pipe.
    pending = b""
    while chunk := await stream.read(_READ_CHUNK):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            _emit(raw, tail, on_line)
        if len(pending) > _MAX_LINE_BYTES:
            _emit(pending, tail, on_line)
            pending = b""
    if pending:
        _emit(pending, tail, on_line)


def _emit(raw: bytes, tail: deque[str], on_line: Callable[[str], None] | None) -> None:
    line = raw[:_MAX_LINE_BYTES].decode("utf-8", errors="replace").rstrip("\r")
    tail.append(line)
    if on_line is not None:
        on_line(line)


async def _kill_and_reap(process: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    _kill_group(process.pid)
    try:
        try:
            async with asyncio.timeout(_REAP_TIMEOUT):
                await process.wait()
        except TimeoutError:
            pass  # SIGKILL cannot be ignored; only an uninterruptible sleep gets here.
        # The pipe closes once every member of the group is dead, which ends the reader.
        await asyncio.wait({reader}, timeout=_DRAIN_TIMEOUT)
    finally:
        # Also reached when the caller cancels again during cleanup: the reader must not
        # outlive this call either way.
        if not reader.done():
            reader.cancel()
            await asyncio.wait({reader})
        if not reader.cancelled():
            # Retrieve it so asyncio does not log "exception was never retrieved"; the error
            # that brought us here is the one worth raising.
            reader.exception()


def _kill_group(pgid: int) -> None:
    # start_new_session=True made k6 the leader of a group whose id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
