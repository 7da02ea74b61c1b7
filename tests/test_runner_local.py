"""The local back-end with real k6: staging, the binary, the summary, cleanup on cancellation."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import pytest

from devkit.prometheus import PrometheusServer
from sli_provider.k6.invocation import RemoteWriteTarget, RunTags
from sli_provider.runner.backend import K6StartError
from sli_provider.runner.core import run_plan
from sli_provider.runner.local import LocalK6Backend
from sli_provider.runner.plan import LocalScript, RunPlan, ScriptSource, StagedScript

MAIN = """
import { greeting } from './lib/helper.js';
const name = open('./data/name.txt');
export const options = { vus: 1, iterations: 2, thresholds: { iterations: ['count>=2'] } };
export default function () { console.log(greeting + ' ' + name); }
"""
HELPER = "export const greeting = 'hello';\n"
ENDLESS = """
import { sleep } from 'k6';
export const options = { vus: 1, duration: '5m' };
export default function () { sleep(1); }
"""


def k6_processes_under(directory: Path) -> list[int]:
    """Live processes working in a directory below ``directory`` (the back-end's private ones)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if Path(str(directory)) in Path((entry / "cwd").readlink()).parents:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def plan_for(script: ScriptSource, prometheus_url: str) -> RunPlan:
    return RunPlan(
        tags=RunTags("shop", "staging", "web", str(uuid.uuid4())),
        script=script,
        remote_write=RemoteWriteTarget(prometheus_url + "/api/v1/write"),
    )


async def test_staged_files_keep_their_layout_and_the_directory_goes_afterwards(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    staged = StagedScript(
        "k6/main.js",
        {
            "k6/main.js": MAIN.encode(),
            "k6/lib/helper.js": HELPER.encode(),
            "k6/data/name.txt": b"world",
        },
    )
    lines: list[str] = []
    backend = LocalK6Backend(work_dir=tmp_path, on_line=lines.append)

    result = await run_plan(plan_for(staged, prometheus.url), backend)

    assert result.returncode == 0, "\n".join(result.outcome.output_tail)
    assert any("hello world" in line for line in lines)
    (threshold,) = result.outcome.summary.thresholds
    assert (threshold.metric, threshold.expression, threshold.held) == (
        "iterations",
        "count>=2",
        True,
    )
    assert result.outcome.summary.metrics["iterations"]["count"] == 2
    assert result.k6_data()["script"] == "k6/main.js"
    assert list(tmp_path.iterdir()) == []


async def test_a_local_script_runs_in_place_so_its_relative_imports_resolve(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    source = tmp_path / "suite"
    (source / "lib").mkdir(parents=True)
    (source / "data").mkdir()
    (source / "main.js").write_text(MAIN)
    (source / "lib" / "helper.js").write_text(HELPER)
    (source / "data" / "name.txt").write_text("in place")
    work = tmp_path / "work"
    work.mkdir()

    result = await run_plan(
        plan_for(LocalScript(source / "main.js"), prometheus.url), LocalK6Backend(work_dir=work)
    )

    assert result.returncode == 0, "\n".join(result.outcome.output_tail)
    assert result.outcome.summary.metrics["iterations"]["count"] == 2
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in source.iterdir()) == ["data", "lib", "main.js"]


async def test_without_a_k6_binary_the_run_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    staged = StagedScript("a.js", {"a.js": b"export default function () {}"})

    with pytest.raises(K6StartError, match="k6 binary not found"):
        await LocalK6Backend(work_dir=tmp_path).execute(plan_for(staged, "http://127.0.0.1:9"))

    assert list(tmp_path.iterdir()) == []


async def test_cancelling_a_run_kills_k6_and_removes_its_directory(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    staged = StagedScript("endless.js", {"endless.js": ENDLESS.encode()})
    task = asyncio.create_task(
        LocalK6Backend(work_dir=tmp_path).execute(plan_for(staged, prometheus.url))
    )
    for _ in range(200):
        if k6_processes_under(tmp_path):
            break
        await asyncio.sleep(0.05)
    assert k6_processes_under(tmp_path), "k6 did not start"

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert k6_processes_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


async def test_the_core_asks_for_the_runs_series_only_when_k6_completed(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    asked: list[tuple[str, float, float]] = []

    async def check(tags: RunTags, start: float, end: float, iterations: float | None) -> bool:
        asked.append((tags.context, start, end))
        return False

    backend = LocalK6Backend(work_dir=tmp_path)
    done = plan_for(
        StagedScript("a.js", {"a.js": b"export default function () {}"}), prometheus.url
    )
    broken = plan_for(
        StagedScript("b.js", {"b.js": b"export default function ( {"}), prometheus.url
    )

    completed = await run_plan(done, backend, series_check=check)
    failed = await run_plan(broken, backend, series_check=check)

    assert asked == [(done.tags.context, completed.outcome.started_at, completed.outcome.ended_at)]
    assert completed.wrote_series is False
    assert completed.missing_series_message() == (
        f"k6 wrote no metrics to Prometheus ({prometheus.url}/api/v1/write): is its remote-write "
        "receiver enabled (--web.enable-remote-write-receiver)? k6 itself exits 0 when remote "
        "write fails."
    )
    assert (failed.returncode, failed.wrote_series, failed.missing_series_message()) == (
        107,
        None,
        None,
    )
