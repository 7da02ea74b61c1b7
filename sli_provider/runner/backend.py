"""Where a planned k6 run executes: the interface every back-end implements, and its outcome.

A back-end owns everything about the machine k6 runs on: which binary, where the script and
its files are staged, how k6's environment is set (credentials included) and how k6's summary
is read back. The implementations: the local process (``runner/local.py``) and k6-operator
TestRuns (``runner/k6_operator/backend.py``), picked per plan by ``runner/choice.py``.

Errors: ``RunnerError`` (k6 could not be run to completion) splits into ``K6StartError`` (no
binary, staging failed, exec failed; ``NoSuitableK6`` when no binary has the script's
extensions), ``K6Timeout`` (killed at the plan's deadline) and, for TestRuns, ``KubeError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sli_provider.errors import SliProviderError
from sli_provider.runner.plan import RunPlan
from sli_provider.runner.summary import THRESHOLDS_CROSSED, RunReport, Threshold


class RunnerError(SliProviderError):
    """k6 could not be run to completion; the message says why."""


class K6StartError(RunnerError):
    """k6 could not be started: no binary, its files could not be staged, exec failed."""


class K6Timeout(RunnerError, TimeoutError):
    """k6 ran longer than allowed and was killed; ``output_tail`` holds its last lines."""

    def __init__(self, timeout: float, output_tail: Sequence[str]) -> None:
        super().__init__(f"k6 did not finish within {timeout:g} s and was killed")
        self.timeout = timeout
        self.output_tail = tuple(output_tail)


@dataclass(frozen=True)
class UsedBinary:
    """Which k6 ran: its configured name, k6's version, the ``k6/x/...`` imports the script used."""

    name: str
    version: str
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunnerExit:
    """One of the k6 processes of a distributed run: how it ended and what it judged alone."""

    name: str
    exit_code: int
    thresholds: tuple[Threshold, ...] = ()
    iterations: float | None = None
    # False when its output could not be read back (its iterations are then unknown).
    log_read: bool = True


@dataclass(frozen=True)
class K6Outcome:
    """How a k6 run ended. ``started_at``/``ended_at`` are unix seconds around the process;
    ``summary`` is what k6's summary export said (empty when k6 wrote none). A distributed run
    lists its ``runners``; its ``returncode`` is 99 when any crossed thresholds, else 0."""

    returncode: int
    started_at: float
    ended_at: float
    output_tail: tuple[str, ...]
    summary: RunReport = field(default_factory=lambda: RunReport((), {}))
    binary: UsedBinary | None = None
    runners: tuple[RunnerExit, ...] = ()
    # The threshold whose crossing made the service stop every runner (a split run's
    # abortOnFail, judged on the whole test), with the value it crossed at.
    aborted_by: Threshold | None = None

    def runners_crossing_thresholds(self) -> list[str]:
        return [r.name for r in self.runners if r.exit_code == THRESHOLDS_CROSSED]


class RunnerBackend(Protocol):
    """Executes one planned k6 run to its end, or raises ``RunnerError``.

    Cancelling ``execute`` stops k6 before it returns; nothing of the run is left behind.
    """

    async def execute(self, plan: RunPlan) -> K6Outcome: ...
