"""The ``sli-provider`` command of this checkout, for tests and the demo that run it as a process.

Not the installed console script: several checkouts (git worktrees) may share one virtualenv
whose editable install points at only one of them, and a test must run the code it sits beside.
"""

from __future__ import annotations

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
