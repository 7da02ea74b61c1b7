"""Run one workload as N local k6 processes, started the way k6-operator starts its runners.

k6-operator gives runner i of N (1-based) ``--execution-segment=(i-1)/N:i/N`` and, when N > 1,
``--execution-segment-sequence=0,1/N,...,1``; ``--paused --address=...``; ``--tag instance_id=<i>``
and ``--tag testrun_name=<name>``; its starter then resumes every runner through k6's REST API
(``PATCH /v1/status``). Each process here is a ``RunPlan`` executed by the runner core, so the
keptn tags and the remote write are exactly those of the bundled runner. Every instance also
writes its raw samples (``--out json=...``), from which ``devkit/k6truth.py`` computes the whole
run's exact numbers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from devkit.k6run import LoadRunError, load_env, load_plan
from devkit.ports import LOOPBACK, free_port
from sli_provider.k6.invocation import RunTags
from sli_provider.runner.core import RunResult, run_plan
from sli_provider.runner.local import LocalK6Backend
from sli_provider.runner.plan import RunPlan
from sli_provider.runner.summary import COMPLETED_RETURNCODES

# How long the k6 processes may take to open their REST API before the run is given up.
RESUME_WITHIN_SECONDS = 30.0
_POLL_SECONDS = 0.1


def operator_args(index: int, count: int, testrun_name: str, address: str) -> tuple[str, ...]:
    """k6-operator's flags for runner ``index`` (1-based) of ``count``."""
    if not 1 <= index <= count:
        raise ValueError(f"runner {index} of {count} does not exist")
    args: list[str] = []
    if count > 1:
        sequence = ["0", *(f"{i}/{count}" for i in range(1, count)), "1"]
        args += [
            f"--execution-segment={index - 1}/{count}:{index}/{count}",
            "--execution-segment-sequence=" + ",".join(sequence),
        ]
    args += [
        "--paused",
        f"--address={address}",
        "--tag",
        f"instance_id={index}",
        "--tag",
        f"testrun_name={testrun_name}",
    ]
    return tuple(args)


@dataclass(frozen=True)
class InstanceRun:
    index: int
    result: RunResult
    samples: Path  # k6's --out json file
    summary: dict[str, Any]  # this instance's handleSummary data


@dataclass(frozen=True)
class DistributedRun:
    instances: tuple[InstanceRun, ...]
    start: float
    end: float

    @property
    def sample_files(self) -> list[Path]:
        return [instance.samples for instance in self.instances]


async def run_distributed(
    *,
    prometheus_url: str,
    target_url: str,
    tags: RunTags,
    workdir: Path,
    instances: int,
    testrun_name: str = "devkit-testrun",
    vus: int = 4,
    duration: str = "3s",
    fail_every: int = 5,
    spread_ms: int = 0,
    slow_ms: Mapping[int, int] | None = None,
    script: Path | None = None,
    timeout: float = 120.0,
) -> DistributedRun:
    """Run ``script`` (default ``load.js``) as ``instances`` k6 processes of one test.

    ``slow_ms`` maps a runner's index to an extra delay its requests ask the target for, so one
    instance can hit a slower path than the others (a real k6-operator run gives all runners
    the same arguments; this is the test's way to make them differ).
    """
    addresses = [f"{LOOPBACK}:{free_port()}" for _ in range(instances)]
    paths = await asyncio.to_thread(_fresh_paths, workdir, tags.context, instances)
    plans: list[RunPlan] = []
    for index, (sample_path, summary_path) in enumerate(paths, start=1):
        flags = operator_args(index, instances, testrun_name, addresses[index - 1])
        env = load_env(
            target_url, vus, duration, fail_every, (slow_ms or {}).get(index, 0), summary_path
        )
        plans.append(
            load_plan(
                prometheus_url=prometheus_url,
                tags=tags,
                script=script,
                timeout=timeout,
                script_env={**env, "SPREAD_MS": str(spread_ms)},
                extra_args=(*flags, "--out", f"json={sample_path}"),
            )
        )
    backend = LocalK6Backend(work_dir=workdir)
    # The group owns the k6 processes: if resuming fails, they are cancelled (and killed).
    async with asyncio.TaskGroup() as group:
        runs = [group.create_task(run_plan(plan, backend)) for plan in plans]
        await resume_all(addresses)
    results = [run.result() for run in runs]
    for index, result in enumerate(results, start=1):
        if result.outcome.returncode not in COMPLETED_RETURNCODES:
            code = result.outcome.returncode
            raise LoadRunError(f"k6 instance {index} exited with code {code}", result.outcome)
    return DistributedRun(
        instances=tuple(
            InstanceRun(i, result, paths[i - 1][0], _read_json(paths[i - 1][1]))
            for i, result in enumerate(results, start=1)
        ),
        start=min(r.outcome.started_at for r in results),
        end=max(r.outcome.ended_at for r in results),
    )


async def resume_all(addresses: Sequence[str]) -> None:
    """k6-operator's starter: once every runner's REST API answers, un-pause them all."""
    deadline = time.monotonic() + RESUME_WITHIN_SECONDS
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for address in addresses:
            while not await _answers(session, address):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"k6's REST API at {address} did not answer")
                await asyncio.sleep(_POLL_SECONDS)
        body = {"data": {"type": "status", "id": "default", "attributes": {"paused": False}}}
        for address in addresses:
            async with session.patch(f"http://{address}/v1/status", json=body) as response:
                if response.status != 200:
                    text = await response.text()
                    raise RuntimeError(f"k6 at {address} refused to resume: {text}")


async def _answers(session: aiohttp.ClientSession, address: str) -> bool:
    try:
        async with session.get(f"http://{address}/v1/status") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


def _fresh_paths(workdir: Path, context: str, instances: int) -> list[tuple[Path, Path]]:
    """(samples, summary) file per instance; a file left by an earlier run must not pass."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(1, instances + 1):
        pair = (
            workdir / f"samples-{context}-{index}.json",
            workdir / f"summary-{context}-{index}.json",
        )
        for stale in pair:
            stale.unlink(missing_ok=True)
        paths.append(pair)
    return paths


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data
