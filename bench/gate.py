"""/gate's answer time beside /preview's for the same run: what finding the latest run, scoring
and the history add to the queries.

``python -m bench.gate [--repeats 20] [--runs 10]``. A real Prometheus holds ``--runs`` k6 runs
of one scope (each 3 s, 2 VUs, written by real k6); the service runs in this process. Two
variants, alternated so that the machine's noise hits both alike:

* **preview**: ``POST /preview`` of the slo.yaml's SLIs for the latest run, its window and
  context given (the baseline: the queries and the service's own SLI work);
* **gate**: ``POST /gate`` with the scope only: the run lookup (two queries), the same SLIs, the
  score against the history and the history's check that the run is stored already.

Prints medians and p90s and the ratio, and the 10 s that Argo's and Flagger's callers wait.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from devkit.gate_runs import GATE_SLO, write_slo
from devkit.k6run import LoadRun, run_load
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn

CALLERS_TIMEOUT = 10.0


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    async with session.post(url, json=body) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}: {await response.text()}")
    return time.perf_counter() - started


def _p90(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.9) - 1)]


async def main(repeats: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with PrometheusServer(work / "prometheus") as prometheus, TargetServer() as target:
            tags = RunTags("bench", "staging", "web", "")
            last: tuple[RunTags, LoadRun] | None = None
            for _ in range(runs):
                run_tags = RunTags(tags.project, tags.stage, tags.service, str(uuid.uuid4()))
                run = await run_load(
                    prometheus_url=prometheus.url,
                    target_url=target.url,
                    tags=run_tags,
                    workdir=work,
                    vus=2,
                    duration="3s",
                    fail_every=0,
                )
                last = (run_tags, run)
            assert last is not None
            write_slo(work / "config", tags, GATE_SLO)
            scope = {"project": tags.project, "stage": tags.stage, "service": tags.service}
            preview_body = {
                **scope,
                "context": last[0].context,
                "start": format_keptn(last[1].start),
                "end": format_keptn(last[1].end),
                "indicators": ["http_req_failed_rate", "http_reqs_total", "http_req_duration_p95"],
            }
            settings = Settings(
                prometheus_url=prometheus.url,
                sli_config_dir=work / "config",
                gate_history=work / "history.sqlite3",
                runner_enabled=False,
            )
            timings: dict[str, list[float]] = {"preview": [], "gate": []}
            async with running_service(settings) as url, aiohttp.ClientSession() as session:
                await _post(session, url + "/gate", scope)  # stores the run; warms up
                await _post(session, url + "/preview", preview_body)
                for _ in range(repeats):
                    timings["preview"].append(await _post(session, url + "/preview", preview_body))
                    timings["gate"].append(await _post(session, url + "/gate", scope))
    medians = {k: statistics.median(v) for k, v in timings.items()}
    print(f"{runs} runs of the scope in Prometheus, {repeats} requests each (ms):")
    for name, values in timings.items():
        print(f"  {name:8} median {medians[name] * 1000:7.1f}  p90 {_p90(values) * 1000:7.1f}")
    print(
        f"  gate / preview: {medians['gate'] / medians['preview']:.2f}; slowest gate "
        f"{max(timings['gate']) * 1000:.0f} ms of the callers' {CALLERS_TIMEOUT:g} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    asyncio.run(main(options.repeats, options.runs))
