"""What the freshness check costs a get-sli whose run is already final, per store.

    python -m bench.freshness [--rounds 30]

One real 3 s k6 run into a fresh Prometheus and into VictoriaMetrics (its default 30 s latency
offset); per store two services, FRESHNESS_WAIT_SECONDS=0 (no check) and the default, answer the
same get-sli (every built-in) in alternating order, and the medians are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from bench.getsli import BUILTINS, Harness
from devkit.fake_keptn import FakeKeptn
from devkit.k6run import run_load
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.stores import MetricsStore
from devkit.target import TargetServer
from devkit.victoria import VictoriaMetricsServer
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags

# The devkit's own queries do not ask VictoriaMetrics for its newest samples: up to its 30 s.
VISIBLE_TIMEOUT = 60.0


async def measure_store(
    store: MetricsStore, target: TargetServer, workdir: Path, rounds: int
) -> dict[str, float]:
    tags = RunTags("bench", "fresh", store.store_name, str(uuid.uuid4()))
    run = await run_load(
        prometheus_url=store.url, target_url=target.url, tags=tags, workdir=workdir, duration="3s"
    )
    start, end = math.floor(run.start), math.ceil(run.end)
    await _until_visible(store, tags, end)
    times: dict[float, list[float]] = {0.0: [], Settings.freshness_wait_seconds: []}
    async with FakeKeptn() as keptn, aiohttp.ClientSession() as session:
        keptn.add_scope(tags.project, tags.stage, tags.service)
        services = {}
        for wait in times:
            settings = Settings(
                prometheus_url=store.url, distributor_url=keptn.url, freshness_wait_seconds=wait
            )
            services[wait] = running_service(settings)
        urls = {wait: await service.__aenter__() for wait, service in services.items()}
        try:
            for round_ in range(rounds + 2):  # two warm-ups
                order = list(urls) if round_ % 2 else list(reversed(urls))
                for wait in order:
                    harness = Harness(session, urls[wait], store.url, keptn, tags, start, end)
                    elapsed, reply = await harness.get_sli(BUILTINS)
                    message = reply["data"]["message"]
                    if "wait" in message or reply["data"]["result"] != "pass":
                        raise RuntimeError(f"not a final run's answer: {message}")
                    if round_ >= 2:
                        times[wait].append(elapsed * 1000)
        finally:
            for service in services.values():
                await service.__aexit__(None, None, None)
    off, on = (statistics.median(t) for t in times.values())
    return {"without check ms": off, "with check ms": on, "added ms": on - off, "ratio": on / off}


async def _until_visible(store: MetricsStore, tags: RunTags, end: int) -> None:
    query = f'count_over_time(k6_vus_max{{keptn_context="{tags.context}"}}[1h])'
    deadline = time.monotonic() + VISIBLE_TIMEOUT
    while not await store.query(query, at=end):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{store.store_name} shows no series of the run")
        await asyncio.sleep(0.5)


async def main_async(rounds: int, workdir: Path) -> dict[str, dict[str, float]]:
    results = {}
    async with (
        PrometheusServer(workdir / "prometheus") as prometheus,
        VictoriaMetricsServer(workdir / "victoria") as victoria,
        TargetServer() as target,
    ):
        for store in (prometheus, victoria):
            results[store.store_name] = await measure_store(
                store, target, workdir / store.store_name, rounds
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness", description=__doc__)
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds (default 30)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sli-fresh-") as tmp:
        results = asyncio.run(main_async(args.rounds, Path(tmp)))
    print(f"get-sli of {len(BUILTINS)} built-ins, final run, medians of {args.rounds} rounds")
    for store, figures in results.items():
        shown = ", ".join(f"{k} {v:.3g}" for k, v in figures.items())
        print(f"  {store}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
