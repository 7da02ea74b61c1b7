"""Run the devkit load script the way the service's test runner does, and keep k6's summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sli_provider.adapters.prometheus import PrometheusClient
from sli_provider.k6.invocation import RemoteWriteTarget, RunTags, remote_write_url
from sli_provider.runner.backend import K6Outcome
from sli_provider.runner.core import run_plan
from sli_provider.runner.local import LocalK6Backend
from sli_provider.runner.plan import LocalScript, RunPlan
from sli_provider.runner.series import prometheus_series_check
from sli_provider.runner.summary import COMPLETED_RETURNCODES, THRESHOLDS_CROSSED

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
LOAD_SCRIPT = SCRIPTS_DIR / "load.js"
ONE_SCRIPT = SCRIPTS_DIR / "one.js"


class LoadRunError(RuntimeError):
    """k6 did not complete the run (script error, bad option, abort) or left no summary."""

    def __init__(self, message: str, outcome: K6Outcome) -> None:
        tail = "\n".join(outcome.output_tail)
        super().__init__(f"{message}; last k6 output:\n{tail}")
        self.outcome = outcome


@dataclass(frozen=True)
class LoadRun:
    """A finished k6 run: how it ended, k6's handleSummary data and the run's window."""

    outcome: K6Outcome
    summary: dict[str, Any]
    start: float
    end: float

    @property
    def thresholds_crossed(self) -> bool:
        return self.outcome.returncode == THRESHOLDS_CROSSED


async def run_load(
    *,
    prometheus_url: str,
    target_url: str,
    tags: RunTags,
    workdir: Path,
    vus: int = 3,
    duration: str = "3s",
    fail_every: int = 5,
    slow_ms: int = 0,
    script: Path | None = None,
    timeout: float = 120.0,
    write_url: str | None = None,
    wait_for_final_push: bool = True,
) -> LoadRun:
    """Run ``script`` (default ``load.js``) against ``target_url``, writing into Prometheus
    (through ``write_url`` when given). ``wait_for_final_push=False`` returns as soon as k6 has
    exited, as a runner that does not check the store would."""
    summary_path = _fresh_summary_path(workdir, tags)
    plan = load_plan(
        prometheus_url=prometheus_url,
        tags=tags,
        script=script,
        timeout=timeout,
        script_env=load_env(target_url, vus, duration, fail_every, slow_ms, summary_path),
        write_url=write_url,
    )
    # The service's runner waits until k6's last push is visible before it reports; so does this,
    # so a get-sli right after the run scores the whole run.
    prometheus = PrometheusClient(
        prometheus_url, concurrency=2, timeout=10.0, attempts=2, max_wait=1.0
    )
    try:
        check = prometheus_series_check(prometheus) if wait_for_final_push else None
        outcome = (
            await run_plan(plan, LocalK6Backend(work_dir=workdir), series_check=check)
        ).outcome
    finally:
        await prometheus.aclose()
    if outcome.returncode not in COMPLETED_RETURNCODES:
        raise LoadRunError(f"k6 exited with code {outcome.returncode}", outcome)
    summary = _read_summary(summary_path, outcome)
    return LoadRun(outcome=outcome, summary=summary, start=outcome.started_at, end=outcome.ended_at)


def load_env(
    target_url: str, vus: int, duration: str, fail_every: int, slow_ms: int, summary_path: Path
) -> dict[str, str]:
    """The knobs of ``load.js`` (see the script) as its ``--env``."""
    return {
        "TARGET_URL": target_url,
        "VUS": str(vus),
        "DURATION": duration,
        "FAIL_EVERY": str(fail_every),
        "SLOW_MS": str(slow_ms),
        "SUMMARY_PATH": str(summary_path),
    }


def load_plan(
    *,
    prometheus_url: str,
    tags: RunTags,
    script: Path | None,
    timeout: float,
    script_env: dict[str, str],
    extra_args: tuple[str, ...] = (),
    write_url: str | None = None,
) -> RunPlan:
    """The runner's plan for ``script`` (default ``load.js``), writing into Prometheus."""
    return RunPlan(
        tags=tags,
        script=LocalScript((script or LOAD_SCRIPT).resolve()),
        remote_write=RemoteWriteTarget(write_url or remote_write_url(prometheus_url)),
        script_env=script_env,
        timeout_seconds=timeout,
        extra_args=extra_args,
    )


def _fresh_summary_path(workdir: Path, tags: RunTags) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"summary-{tags.context}.json"
    # A file left by an earlier run with the same context must not pass for this run's summary.
    path.unlink(missing_ok=True)
    return path


def _read_summary(path: Path, outcome: K6Outcome) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LoadRunError(f"no usable k6 summary at {path}: {exc}", outcome) from exc
    if not isinstance(summary, dict):
        raise LoadRunError(f"k6 summary at {path} is not a JSON object", outcome)
    return summary
