"""The local back-end's process handling (runner/process.py) against the real k6 binary."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from sli_provider.runner.backend import K6Outcome, K6Timeout
from sli_provider.runner.local import find_k6_binary
from sli_provider.runner.process import run_process

QUICK_SCRIPT = """
export const options = { vus: 1, iterations: 1 };
export default function () { console.log('hello from k6'); }
"""
BROKEN_SCRIPT = """
export default function () { this is not javascript }
"""
ENDLESS_SCRIPT = """
import { sleep } from 'k6';
export const options = { vus: 1, duration: '5m' };
export default function () { console.log('tick'); sleep(1); }
"""


Command = tuple[tuple[str, ...], dict[str, str]]


def _invocation(tmp_path: Path, source: str, *extra: str) -> Command:
    script = tmp_path / "script.js"
    script.write_text(source, encoding="utf-8")
    argv = (find_k6_binary(), "run", "--no-usage-report", "--quiet", *extra, str(script))
    return argv, {"HOME": str(tmp_path), "K6_NO_COLOR": "true"}


async def run_k6(command: Command, **options: Any) -> K6Outcome:
    argv, env = command
    return await run_process(argv, env=env, **options)


def _pids_running(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line mentions ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def _wait_for_pid(marker: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := _pids_running(marker):
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no process with {marker!r} appeared")


async def test_one_iteration_exits_zero_and_streams_lines(tmp_path: Path) -> None:
    lines: list[str] = []
    before = time.time()

    outcome = await run_k6(
        _invocation(tmp_path, QUICK_SCRIPT), timeout=30, cwd=tmp_path, on_line=lines.append
    )

    assert outcome.returncode == 0
    assert before <= outcome.started_at < outcome.ended_at <= time.time()
    assert any("hello from k6" in line for line in lines)
    assert outcome.output_tail == tuple(lines[-40:])


async def test_tail_keeps_only_the_last_lines(tmp_path: Path) -> None:
    script = "export default function () { for (let i = 0; i < 30; i++) console.log('line ' + i); }"

    lines: list[str] = []

    outcome = await run_k6(
        _invocation(tmp_path, script, "--no-summary"),
        timeout=30,
        on_line=lines.append,
        tail_lines=5,
    )

    assert sum("line " in line for line in lines) == 30
    assert outcome.output_tail == tuple(lines[-5:])
    assert "line 29" in outcome.output_tail[-1]


async def test_script_error_exits_107(tmp_path: Path) -> None:
    outcome = await run_k6(_invocation(tmp_path, BROKEN_SCRIPT), timeout=30)

    assert outcome.returncode == 107
    assert outcome.output_tail, "k6 explains the syntax error on its output"


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    marker = str(tmp_path / "script.js")
    pids: list[int] = []

    def remember_pid(_line: str) -> None:
        if not pids:
            pids.extend(_pids_running(marker))

    started = time.monotonic()
    with pytest.raises(K6Timeout) as caught:
        await run_k6(_invocation(tmp_path, ENDLESS_SCRIPT), timeout=1.0, on_line=remember_pid)

    assert time.monotonic() - started < 5
    assert caught.value.timeout == 1.0
    assert any("tick" in line for line in caught.value.output_tail)
    assert len(pids) == 1
    assert not _group_exists(pids[0])
    assert _pids_running(marker) == []


async def test_timeout_kills_children_in_the_group(tmp_path: Path) -> None:
    # k6 starts no children, so a shell stands in to prove the whole group is killed.
    marker = f"sleep 3{os.getpid() % 97}.5"
    invocation: Command = (("/bin/sh", "-c", f"{marker} & {marker} & wait"), {})

    with pytest.raises(K6Timeout):
        await run_k6(invocation, timeout=0.5)

    assert _pids_running(marker) == []


async def test_cancellation_kills_k6_and_propagates(tmp_path: Path) -> None:
    invocation = _invocation(tmp_path, ENDLESS_SCRIPT)
    task = asyncio.create_task(run_k6(invocation, timeout=60))
    pid = await _wait_for_pid(str(tmp_path / "script.js"))

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert task.cancelled()
    assert not _group_exists(pid)
    assert _pids_running(str(tmp_path / "script.js")) == []


async def test_missing_binary_raises_before_anything_runs(tmp_path: Path) -> None:
    invocation: Command = ((str(tmp_path / "no-such-k6"), "run"), {})

    with pytest.raises(FileNotFoundError):
        await run_k6(invocation, timeout=5)


async def test_on_line_error_kills_k6_and_propagates(tmp_path: Path) -> None:
    def explode(_line: str) -> None:
        raise RuntimeError("consumer broke")

    with pytest.raises(RuntimeError, match="consumer broke"):
        await run_k6(_invocation(tmp_path, ENDLESS_SCRIPT), timeout=30, on_line=explode)

    assert _pids_running(str(tmp_path / "script.js")) == []
