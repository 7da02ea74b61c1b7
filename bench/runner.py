"""The runner's overhead around k6: event received → k6 started, k6 exited → finished event sent.

``python -m bench.runner [--runs 20]``. Each run is a 1-iteration k6 script against a local
target; the service runs in this process against a real Prometheus and a fake Keptn.

* in:  from the POST of test.triggered to ``data.test.start`` (taken just before k6 is exec'd),
  which covers the HTTP intake, the workload lookup (three resource reads), test.started,
  and writing the script into its private directory;
* out: from ``data.test.end`` (taken right after k6 exits) to test.finished arriving at the fake
  control plane, which covers reading k6's summary, the Prometheus check for the run's series,
  removing the directory and delivering the event.

Both clocks are this process's wall clock; ``data.test`` has millisecond resolution.

Three services run side by side, one event each per round in turn, so the machine's noise hits
them alike: the baseline (only the stock k6), and the same with three binaries configured
(``default`` plus two xk6 builds, one of them with ``k6 deps``) for a script that needs no
extension and for one that imports ``k6/x/faker``. The choice of binary (reading the script's
imports, ``k6 deps``, a stat of each file) is the difference, printed as a ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp

from devkit.events import make_test_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6binaries import extension_k6
from devkit.k6run import ONE_SCRIPT
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.config import Settings
from sli_provider.keptn.timestamps import parse_keptn

GOAL_SECONDS = 0.3


FAKER_PREFIX = b'import faker from "k6/x/faker";\nconst visitor = faker.person.firstName();\n'
# variant → (service, teststrategy): the baseline service has only the stock k6.
VARIANTS = {
    "baseline: stock k6 only": ("baseline", "performance"),
    "3 binaries, plain script": ("three", "performance"),
    "3 binaries, k6/x/faker script": ("three", "faker"),
}


@dataclass
class Timings:
    into: list[float] = field(default_factory=list)
    out: list[float] = field(default_factory=list)
    k6_wall: list[float] = field(default_factory=list)


async def measure(runs: int, workdir: Path) -> dict[str, Timings]:
    timings = {name: Timings() for name in VARIANTS}
    faker = extension_k6(workdir / "xk6-a")
    other = extension_k6(workdir / "xk6-b")
    async with (
        PrometheusServer(workdir / "prometheus") as prometheus,
        TargetServer() as target,
        FakeKeptn() as keptn,
    ):
        keptn.set_resource(ONE_SCRIPT.read_bytes(), "k6/performance.js", project="bench")
        keptn.set_resource(FAKER_PREFIX + ONE_SCRIPT.read_bytes(), "k6/faker.js", project="bench")
        baseline = Settings(
            prometheus_url=prometheus.url, distributor_url=keptn.url, runner_work_dir=workdir
        )
        three = replace(baseline, k6_binaries={"faker": str(faker), "other": str(other)})
        async with (
            running_service(baseline) as baseline_url,
            running_service(three) as three_url,
            aiohttp.ClientSession() as session,
        ):
            urls = {"baseline": baseline_url, "three": three_url}
            for i in range(runs + 2):  # two warm-up rounds first
                for name, (service, strategy) in VARIANTS.items():
                    event = make_test_triggered(
                        project="bench",
                        stage="dev",
                        service="svc",
                        teststrategy=strategy,
                        uris_local=[target.url],
                    )
                    posted = time.time()
                    async with session.post(urls[service] + "/", json=event) as response:
                        assert response.status == 202
                    (finished,) = await keptn.wait_for_events(
                        type="sh.keptn.event.test.finished",
                        shkeptncontext=event["shkeptncontext"],
                        timeout=60,
                    )
                    arrived = time.time()
                    data = finished["data"]
                    assert data["result"] == "pass", data["message"]
                    start = parse_keptn(data["test"]["start"])
                    end = parse_keptn(data["test"]["end"])
                    if i >= 2:
                        timings[name].into.append(start - posted)
                        timings[name].out.append(arrived - end)
                        timings[name].k6_wall.append(end - start)
    return timings


def describe(name: str, values: list[float], baseline: list[float] | None = None) -> str:
    median = statistics.median(values)
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else median
    verdict = "within" if median < GOAL_SECONDS else "OVER"
    ratio = f"   x{median / statistics.median(baseline):.2f} baseline" if baseline else ""
    return (
        f"  {name:<31} median {median * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   "
        f"({verdict} the {GOAL_SECONDS * 1000:.0f} ms goal){ratio}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        timings = asyncio.run(measure(args.runs, Path(tmp)))
    base = timings[next(iter(VARIANTS))]
    print(f"runner overhead over {args.runs} rounds of a 1-iteration k6 script")
    print("event received → k6 started")
    for name, t in timings.items():
        print(describe(name, t.into, None if t is base else base.into))
    print("k6 exited → test.finished")
    for name, t in timings.items():
        print(describe(name, t.out, None if t is base else base.out))
    print("k6 process itself")
    for name, t in timings.items():
        print(f"  {name:<31} median {statistics.median(t.k6_wall) * 1000:7.1f} ms")
    worst = max(max(statistics.median(t.into), statistics.median(t.out)) for t in timings.values())
    return 0 if worst < GOAL_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
