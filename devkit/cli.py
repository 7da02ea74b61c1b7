"""The ``sli-provider`` command of this checkout, for tests and the demo that run it as a process.

Not the installed console script: several checkouts (git worktrees) may share one virtualenv
whose editable install points at only one of them, and a test must run the code it sits beside.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sli_provider_command(*args: str) -> list[str]:
    """argv for ``sli-provider ARGS...`` run from this checkout (use with :func:`command_env`)."""
    return [sys.executable, "-m", "sli_provider", *args]


def command_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus what makes ``python -m sli_provider`` import this checkout's package."""
    return {**env, "PYTHONPATH": str(ROOT)}


async def run_sli_provider(
    *args: str, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``sli-provider ARGS...`` to its end without blocking the event loop, which may be serving
    the target k6 loads; killed past ``timeout``."""
    command = sli_provider_command(*args)
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=command_env(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return subprocess.CompletedProcess(command, process.returncode, out.decode(), err.decode())
