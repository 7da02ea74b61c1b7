"""The runner's own overhead around k6: event received → k6 started, k6 exited → finished sent.

``python -m bench.runner [--runs 20]``. Each run is a 1-iteration k6 script against a local
target; the service runs in this process against a real Prometheus and a fake Keptn.

* in:  from the POST of test.triggered to ``data.test.start`` (taken just before k6 is exec'd),
  which covers the HTTP intake, the workload lookup (three resource reads), test.started,
  and writing the script into its private directory;
* out: from ``data.test.end`` (taken right after k6 exits) to test.finished arriving at the fake
  control plane, which covers reading k6's summary, the Prometheus check for the run's series,
  removing the directory and delivering the event.

Both clocks are this process's wall clock; ``data.test`` has millisecond resolution.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from devkit.events import make_test_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6run import ONE_SCRIPT
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.config import Settings
from sli_provider.keptn.timestamps import parse_keptn

GOAL_SECONDS = 0.3


async def measure(runs: int, workdir: Path) -> tuple[list[float], list[float], list[float]]:
    into, out, k6_wall = [], [], []
    async with (
        PrometheusServer(workdir / "prometheus") as prometheus,
        TargetServer() as target,
        FakeKeptn() as keptn,
    ):
        keptn.set_resource(ONE_SCRIPT.read_bytes(), "k6/performance.js", project="bench")
        settings = Settings(
            prometheus_url=prometheus.url, distributor_url=keptn.url, runner_work_dir=workdir
        )
        async with running_service(settings) as url, aiohttp.ClientSession() as session:
            for i in range(runs + 2):  # two warm-up runs first
                event = make_test_triggered(
                    project="bench",
                    stage="dev",
                    service="svc",
                    teststrategy="performance",
                    uris_local=[target.url],
                )
                posted = time.time()
                async with session.post(url + "/", json=event) as response:
                    assert response.status == 202
                (finished,) = await keptn.wait_for_events(
                    type="sh.keptn.event.test.finished",
                    shkeptncontext=event["shkeptncontext"],
                    timeout=60,
                )
                arrived = time.time()
                data = finished["data"]
                assert data["result"] == "pass", data["message"]
                start, end = parse_keptn(data["test"]["start"]), parse_keptn(data["test"]["end"])
                if i >= 2:
                    into.append(start - posted)
                    out.append(arrived - end)
                    k6_wall.append(end - start)
    return into, out, k6_wall


def describe(name: str, values: list[float]) -> str:
    median = statistics.median(values)
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else median
    verdict = "within" if median < GOAL_SECONDS else "OVER"
    return (
        f"{name:<28} median {median * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   "
        f"({verdict} the {GOAL_SECONDS * 1000:.0f} ms goal)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        into, out, k6_wall = asyncio.run(measure(args.runs, Path(tmp)))
    print(f"runner overhead over {args.runs} runs of a 1-iteration k6 script")
    print(describe("event received → k6 started", into))
    print(describe("k6 exited → test.finished", out))
    print(f"{'k6 process itself':<28} median {statistics.median(k6_wall) * 1000:7.1f} ms")
    return 0 if max(statistics.median(into), statistics.median(out)) < GOAL_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
