"""A finished TestRun's outcome, from its stage, its runner pods and their logs (pure).

k6-operator reports ``finished`` even when runners exited with an error, so each runner pod's
exit code is read: all completed (0; 99 would be a runner's own thresholds, which runners do not
judge) → the run completed, and its thresholds are judged on the whole test afterwards
(``whole_test.py``); anything else, a runner that did not end, or stage ``error`` →
``RunnerError`` with the reason. Runners the service stopped (a whole-test abortOnFail) end as
k6 ends a run stopped through its REST API (exit code 103); that is their expected end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sli_provider.runner.backend import K6Outcome, RunnerError, RunnerExit
from sli_provider.runner.k6_operator.kube import RunnerPodState, StageReport
from sli_provider.runner.k6_operator.runner_logs import read_runner_log
from sli_provider.runner.summary import COMPLETED_RETURNCODES, K6_EXIT_MEANINGS, RunReport

TAIL_LINES = 15


def _tail(lines: Sequence[str]) -> tuple[str, ...]:
    return tuple(line for line in lines if line.strip())[-TAIL_LINES:]


def judge(
    name: str,
    stage: StageReport,
    pods: Sequence[RunnerPodState],
    logs: Mapping[str, Sequence[str] | None],
    *,
    parallelism: int,
    window: tuple[float, float],
    stopped: bool = False,
) -> K6Outcome:
    """``window``: when the service created the TestRun and saw it end, used where the pods do
    not say when their k6 ran; ``logs``: None for a log that could not be read; ``stopped``:
    the service stopped the runners, whatever their exit codes."""
    if stage.stage == "error":
        why = f": {'; '.join(stage.messages)}" if stage.messages else ""
        tails = "".join(
            f"\n{pod.name}:\n" + "\n".join(_tail(logs[pod.name] or ()))
            for pod in pods
            if logs.get(pod.name)
        )
        if not why and not tails:
            why = " (no reason given, no pod output)"
        raise RunnerError(f"k6-operator put the TestRun {name} in stage 'error'{why}{tails}")
    if len(pods) < parallelism:
        raise RunnerError(
            f"the TestRun {name} finished with {len(pods)} of its {parallelism} runner pods"
        )
    for pod in pods:
        if pod.exit_code is None:
            raise RunnerError(
                f"runner pod {pod.name} of the TestRun {name} did not end "
                f"({pod.reason or 'no state'})"
            )
    runners = []
    for pod in pods:
        assert pod.exit_code is not None  # checked above
        lines = logs.get(pod.name)
        report = read_runner_log(lines or ())
        runners.append(
            RunnerExit(
                pod.name,
                pod.exit_code,
                report.thresholds,
                report.iterations,
                log_read=lines is not None,
            )
        )
    for pod, runner in zip(pods, runners, strict=True):
        if runner.exit_code not in COMPLETED_RETURNCODES and not stopped:
            meaning = K6_EXIT_MEANINGS.get(runner.exit_code, "an error")
            tail = "\n".join(_tail(logs.get(pod.name) or ()))
            if logs.get(pod.name) is None:
                tail = "(its log could not be read)"
            raise RunnerError(
                f"runner pod {pod.name} exited with code {runner.exit_code} ({meaning}):\n{tail}"
            )
    starts = [p.started_at for p in pods if p.started_at is not None]
    ends = [p.finished_at for p in pods if p.finished_at is not None]
    counts = [r.iterations for r in runners]
    metrics = {}
    if counts and all(c is not None for c in counts):
        metrics["iterations"] = {"count": float(sum(c for c in counts if c is not None))}
    return K6Outcome(
        returncode=0,
        started_at=min(starts) if len(starts) == len(pods) else window[0],
        # The API gives whole seconds, cut down: a runner ended before finishedAt + 1 s, and
        # before the service saw the TestRun finish.
        ended_at=min(max(ends) + 1, window[1]) if len(ends) == len(pods) else window[1],
        output_tail=(),
        summary=RunReport((), metrics),
        runners=tuple(runners),
    )
