"""A finished TestRun's outcome, from its stage, its runner pods and their logs (pure).

k6-operator reports ``finished`` even when runners exited 99 (thresholds crossed) or with an
error, so the verdict comes from each runner pod's exit code: all 0 → 0; any 99 and the rest
0 → 99 (the runners are named); anything else, a runner that did not end, or stage ``error`` →
``RunnerError`` with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sli_provider.runner.backend import K6Outcome, RunnerError, RunnerExit
from sli_provider.runner.k6_operator.kube import RunnerPodState, StageReport
from sli_provider.runner.k6_operator.runner_logs import read_runner_log
from sli_provider.runner.summary import (
    COMPLETED_RETURNCODES,
    K6_EXIT_MEANINGS,
    THRESHOLDS_CROSSED,
    RunReport,
    Threshold,
)

TAIL_LINES = 15


def _tail(lines: Sequence[str]) -> tuple[str, ...]:
    return tuple(line for line in lines if line.strip())[-TAIL_LINES:]


def judge(
    name: str,
    stage: StageReport,
    pods: Sequence[RunnerPodState],
    logs: Mapping[str, Sequence[str]],
    *,
    parallelism: int,
    window: tuple[float, float],
) -> K6Outcome:
    """``window``: when the service created the TestRun and saw it end, used where the pods do
    not say when their k6 ran."""
    if stage.stage == "error":
        why = f": {'; '.join(stage.messages)}" if stage.messages else ""
        tails = "".join(
            f"\n{pod.name}:\n" + "\n".join(_tail(logs[pod.name]))
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
        report = read_runner_log(logs.get(pod.name, ()))
        runners.append(RunnerExit(pod.name, pod.exit_code, report.thresholds, report.iterations))
    for pod, runner in zip(pods, runners, strict=True):
        if runner.exit_code not in COMPLETED_RETURNCODES:
            meaning = K6_EXIT_MEANINGS.get(runner.exit_code, "an error")
            tail = "\n".join(_tail(logs.get(pod.name, ())))
            raise RunnerError(
                f"runner pod {pod.name} exited with code {runner.exit_code} ({meaning}):\n{tail}"
            )
    crossing = [r for r in runners if r.exit_code == THRESHOLDS_CROSSED]
    starts = [p.started_at for p in pods if p.started_at is not None]
    ends = [p.finished_at for p in pods if p.finished_at is not None]
    counts = [r.iterations for r in runners]
    metrics = {}
    if counts and all(c is not None for c in counts):
        metrics["iterations"] = {"count": float(sum(c for c in counts if c is not None))}
    return K6Outcome(
        returncode=THRESHOLDS_CROSSED if crossing else 0,
        started_at=min(starts) if len(starts) == len(pods) else window[0],
        # The API gives whole seconds, cut down: a runner ended before finishedAt + 1 s, and
        # before the service saw the TestRun finish.
        ended_at=min(max(ends) + 1, window[1]) if len(ends) == len(pods) else window[1],
        output_tail=_tail(logs.get(crossing[0].name, ())) if crossing else (),
        summary=RunReport(_thresholds(runners), metrics),
        runners=tuple(runners),
    )


def _thresholds(runners: Sequence[RunnerExit]) -> tuple[Threshold, ...]:
    """Each threshold once: crossed when any runner crossed it (each judged its own share)."""
    held: dict[tuple[str, str], bool] = {}
    for runner in runners:
        for threshold in runner.thresholds:
            key = (threshold.metric, threshold.expression)
            held[key] = held.get(key, True) and threshold.held
    return tuple(Threshold(metric, expression, ok) for (metric, expression), ok in held.items())
