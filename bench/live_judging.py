"""What judging a split run's abortOnFail thresholds live costs, and how fast it stops the test.

``python -m bench.live_judging [--rounds 3] [--duration 20]``. Each round runs two k6-operator
TestRuns of 3 runners (real k6, the simulated Kubernetes API, a real Prometheus) side by side in
turn, so the machine's noise hits both alike:

* baseline: a script whose abortOnFail thresholds hold (no failing request): it runs its full
  duration while the service judges its thresholds every ``ABORT_CHECK_SECONDS``; the store
  queries it sends are counted (queries per second of a running test, milliseconds per check);
* abort: the same script where runner 1 of 3 meets only errors (a third of all requests fail):
  the time from the crossing (the moment the service judged it crossed) to every runner's k6
  having exited, and the run's whole wall time as a ratio to the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit.kube import SimulatedKubernetes
from devkit.kube.testkit import NAMESPACE
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider.adapters.prometheus import PrometheusClient
from sli_provider.config import Settings
from sli_provider.k6.invocation import RemoteWriteTarget, RunTags, remote_write_url
from sli_provider.ports.metrics_store import StoreKind
from sli_provider.ports.querier import Querier
from sli_provider.ports.store_info import StoreInfo
from sli_provider.runner.distribution import Distribution
from sli_provider.runner.k6_operator.backend import ABORT_CHECK_SECONDS
from sli_provider.runner.plan import RunPlan, StagedScript
from sli_provider.wiring import make_k6_operator

SCRIPT = """
import http from 'k6/http';
import exec from 'k6/execution';
import { sleep } from 'k6';
export const options = {
  scenarios: { s: { executor: 'constant-vus', vus: 3, duration: '__DURATION__' } },
  thresholds: {
    http_req_failed: [{ threshold: 'rate<0.2', abortOnFail: true, delayAbortEval: '2s' }],
    http_req_duration: [{ threshold: 'p(95)<2000', abortOnFail: true, delayAbortEval: '2s' }],
    iterations: [{ threshold: 'count<1000000', abortOnFail: true }],
  },
};
export default function () {
  const failing = __ENV.FAIL === '1'
    && String(exec.test.options.executionSegment || '').startsWith('0:');
  http.get(`${__ENV.TARGET_URL}/${failing ? 'fail' : ''}`);
  sleep(0.05);
}
"""


class CountingStore:
    """A Querier that counts the instant queries sent through it, and their time."""

    def __init__(self, inner: Querier) -> None:
        self._inner = inner
        self.queries: list[tuple[float, float]] = []  # (sent at, seconds taken)

    async def instant(self, query: str, at: float) -> Any:
        began = time.monotonic()
        try:
            return await self._inner.instant(query, at)
        finally:
            self.queries.append((time.time(), time.monotonic() - began))

    async def store_kind(self) -> StoreKind:
        return await self._inner.store_kind()

    async def store_info(self) -> StoreInfo:
        return await self._inner.store_info()

    async def ready(self) -> bool:
        return await self._inner.ready()

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Crossings(logging.Handler):
    """When the back-end logged that it stops every runner."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("abortOnFail threshold crossed"):
            self.at.append(record.created)


@dataclass
class Figures:
    wall: list[float] = field(default_factory=list)
    qps: list[float] = field(default_factory=list)
    query_ms: list[float] = field(default_factory=list)
    crossing_to_stopped: list[float] = field(default_factory=list)


async def one_run(
    kube: SimulatedKubernetes,
    prometheus: PrometheusServer,
    target: TargetServer,
    settings: Settings,
    crossings: _Crossings,
    *,
    fail: bool,
    duration: int,
) -> tuple[float, CountingStore, float | None]:
    client = PrometheusClient(prometheus.url, concurrency=4, timeout=10.0, attempts=2, max_wait=1.0)
    store = CountingStore(client)
    backend = make_k6_operator(settings, lambda _project: store)
    assert backend is not None
    script = SCRIPT.replace("__DURATION__", f"{duration}s").encode()
    plan = RunPlan(
        tags=RunTags("bench", "live", "judging", str(uuid.uuid4())),
        script=StagedScript("k6/test.js", {"k6/test.js": script}),
        remote_write=RemoteWriteTarget(remote_write_url(prometheus.url)),
        script_env={"TARGET_URL": target.url, "FAIL": "1" if fail else "0"},
        timeout_seconds=duration + 60,
        distribution=Distribution(parallelism=3),
    )
    stopped_at: float | None = None
    seen = len(crossings.at)

    async def watch_stop() -> None:
        nonlocal stopped_at
        while True:
            await asyncio.sleep(0.01)
            if len(crossings.at) > seen and stopped_at is None and not kube.k6_running():
                stopped_at = time.time()
                return

    watcher = asyncio.ensure_future(watch_stop())
    began = time.monotonic()
    try:
        outcome = await backend.execute(plan)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await backend.aclose()
        await client.aclose()
    wall = time.monotonic() - began
    if fail and outcome.aborted_by is None:
        raise RuntimeError("the failing run was not aborted")
    crossing = crossings.at[seen] if len(crossings.at) > seen else None
    to_stopped = stopped_at - crossing if fail and stopped_at and crossing else None
    return wall, store, to_stopped


async def main(rounds: int, duration: int) -> None:
    crossings = _Crossings()
    logging.getLogger("sli_provider.runner.k6_operator.backend").addHandler(crossings)
    figures = {"baseline (thresholds hold)": Figures(), "abort (1 of 3 runners fails)": Figures()}
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            PrometheusServer(Path(tmp) / "prometheus") as prometheus,
            TargetServer() as target,
            SimulatedKubernetes(namespaces=(NAMESPACE,)) as kube,
        ):
            settings = Settings(
                prometheus_url=prometheus.url,
                k6_operator_enabled=True,
                k6_operator_kubeconfig=kube.kubeconfig(Path(tmp) / "kubeconfig"),
                k6_operator_namespace=NAMESPACE,
                runner_work_dir=Path(tmp),
            )
            for round_ in range(rounds):
                for name, figure in figures.items():
                    fail = name.startswith("abort")
                    wall, store, to_stopped = await one_run(
                        kube, prometheus, target, settings, crossings, fail=fail, duration=duration
                    )
                    figure.wall.append(wall)
                    times = [at for at, _ in store.queries]
                    if len(times) > 1:
                        figure.qps.append(len(times) / (max(times) - min(times)))
                    figure.query_ms.extend(took * 1000 for _, took in store.queries)
                    if to_stopped is not None:
                        figure.crossing_to_stopped.append(to_stopped)
                    print(
                        f"round {round_ + 1} {name}: {wall:.2f} s, {len(store.queries)} queries"
                        + (f", crossing → all stopped {to_stopped:.3f} s" if to_stopped else ""),
                        flush=True,
                    )
    base = statistics.median(figures["baseline (thresholds hold)"].wall)
    print(
        f"\n3 runners, {duration} s script, a check every {ABORT_CHECK_SECONDS:g} s, {rounds} rounds"
    )
    print(
        "| run | wall s (median) | ratio to baseline | store queries/s | ms per query (median) | crossing → every runner stopped (median, max) |"
    )
    print("|---|---|---|---|---|---|")
    for name, f in figures.items():
        wall = statistics.median(f.wall)
        stop = (
            f"{statistics.median(f.crossing_to_stopped):.3f} s, {max(f.crossing_to_stopped):.3f} s"
            if f.crossing_to_stopped
            else "-"
        )
        qps = f"{statistics.median(f.qps):.2f}" if f.qps else "-"
        ms = f"{statistics.median(f.query_ms):.1f}" if f.query_ms else "-"
        print(f"| {name} | {wall:.2f} | x{wall / base:.2f} | {qps} | {ms} | {stop} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.duration))
