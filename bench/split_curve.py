"""The runners' quantile curve: what its density buys (merged percentile error) and costs.

``python -m bench.split_curve [--rounds 4]``. Each round runs the same k6-operator TestRun of 3
unlike runners (real k6 on the simulated Kubernetes API, a real Prometheus; runner 2 and 3 add
4 and 12 ms to every request) twice, side by side: with the local runner's curve (129 trend
stats, the baseline) and with the split run's (``SPLIT_RUN_TREND_STATS``). Per variant it prints
the series one run writes, the percentile built-ins' curve query time (median of 20), and the
largest error of each merged percentile against the union of the runners' raw samples
(``--out json``), as a get-sli computes it (``percentiles_of_curves``).

``--emulate N``: N local runs of 3 unlike k6 processes instead, no store: each instance's curve
is built from its raw samples with k6's percentile function, for both stat sets.
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
from unittest import mock

from devkit.k6truth import PERCENTILE_SLIS, percentile, read_samples, union_metrics
from devkit.kube import SimulatedKubernetes
from devkit.kube.testkit import NAMESPACE
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider.adapters.prometheus import PrometheusClient
from sli_provider.config import Settings
from sli_provider.k6.invocation import (
    SPLIT_RUN_TREND_STATS,
    TREND_STATS,
    RemoteWriteTarget,
    RunTags,
    remote_write_url,
)
from sli_provider.runner.distribution import Distribution
from sli_provider.runner.plan import RunPlan, StagedScript
from sli_provider.sli.quantile_merge import TIME_TREND_COUNT_SCALE, percentiles_of_curves
from sli_provider.sli.templating import duration_seconds, scope_selector
from sli_provider.sli.window import SLIWindow
from sli_provider.wiring import make_k6_operator

SCRIPT = b"""
import http from 'k6/http';
import exec from 'k6/execution';
export const options = { vus: 6, duration: '4s' };
const EXTRA_MS = { '0': 0, '1': 4, '2': 12 };
export default function () {
  const start = String(exec.test.options.executionSegment || '0:1').split(':')[0];
  const extra = EXTRA_MS[start.split('/')[0]] || 0;
  http.get(`${__ENV.TARGET_URL}/slow?ms=${extra + (__VU * 7 + __ITER * 13) % 12}`);
}
"""
VARIANTS = {"baseline: 129 stats": TREND_STATS, "split run: 340 stats": SPLIT_RUN_TREND_STATS}
QUERY_REPEATS = 20


def curve_query(metric: str, window: SLIWindow) -> str:
    """The percentile built-ins' query (sli-templates/k6.yaml) for one run."""
    selector, span = scope_selector(window, with_context=True), f"[{duration_seconds(window)}s]"
    return (
        f'max by (__name__, instance_id) (last_over_time({{__name__=~"k6_{metric}_(p[0-9]+|min|max)",'
        f"{selector}}}{span})) or label_replace(sum by (__name__, instance_id) "
        f'(last_over_time(k6_{metric}_count{{{selector}}}{span})), "curve_part", "count", "", "")'
    )


async def one_run(
    settings: Settings,
    kube: SimulatedKubernetes,
    client: PrometheusClient,
    target: TargetServer,
    prometheus: PrometheusServer,
    stats: tuple[str, ...],
) -> tuple[int, float, dict[str, float]]:
    backend = make_k6_operator(settings, lambda _project: client)
    assert backend is not None
    tags = RunTags("bench", "curve", "split", str(uuid.uuid4()))
    plan = RunPlan(
        tags=tags,
        script=StagedScript("k6/test.js", {"k6/test.js": SCRIPT}),
        remote_write=RemoteWriteTarget(remote_write_url(prometheus.url)),
        script_env={"TARGET_URL": target.url},
        timeout_seconds=90,
        distribution=Distribution(parallelism=3),
        extra_args=("--out", "json=samples.json"),
    )
    with mock.patch("sli_provider.runner.k6_operator.manifests.SPLIT_RUN_TREND_STATS", stats):
        try:
            outcome = await backend.execute(plan)
        finally:
            await backend.aclose()
    samples = [
        read_samples(kube.pod_dir(NAMESPACE, runner.name) / "samples.json")
        for runner in outcome.runners
    ]
    truth = union_metrics(samples)
    window = SLIWindow(
        project=tags.project,
        stage=tags.stage,
        service=tags.service,
        start_s=outcome.started_at,
        end_s=outcome.ended_at + 2,
        context=tags.context,
    )
    await asyncio.sleep(2)  # the runners' last push
    selector = scope_selector(window, with_context=True)
    span = f"[{duration_seconds(window)}s]"
    series = await client.instant(f"count(last_over_time({{{selector}}}{span}))", window.end_s)
    errors: dict[str, float] = {}
    timings = []
    for name, (metric, stat) in PERCENTILE_SLIS.items():
        percent = float(stat[2:-1])
        for _ in range(QUERY_REPEATS if name == "http_req_duration_p95" else 1):
            began = time.monotonic()
            result = await client.instant(curve_query(metric, window), window.end_s)
            values = percentiles_of_curves(result, [percent], 1000.0, TIME_TREND_COUNT_SCALE)
            timings.append(time.monotonic() - began)
        value = values[percent]
        assert isinstance(value, float), value
        errors[name] = value / truth[metric][stat] - 1
    return int(float(series[0]["value"][1])), statistics.median(timings), errors


async def main(rounds: int) -> None:
    figures: dict[str, tuple[list[int], list[float], list[dict[str, float]]]] = {
        name: ([], [], []) for name in VARIANTS
    }
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            PrometheusServer(Path(tmp) / "prometheus") as prometheus,
            TargetServer() as target,
            SimulatedKubernetes(namespaces=(NAMESPACE,)) as kube,
        ):
            client = PrometheusClient(
                prometheus.url, concurrency=4, timeout=10.0, attempts=2, max_wait=1.0
            )
            settings = Settings(
                prometheus_url=prometheus.url,
                k6_operator_enabled=True,
                k6_operator_kubeconfig=kube.kubeconfig(Path(tmp) / "kubeconfig"),
                k6_operator_namespace=NAMESPACE,
                runner_work_dir=Path(tmp),
            )
            try:
                for round_ in range(rounds):
                    for name, stats in VARIANTS.items():
                        series, took, errors = await one_run(
                            settings, kube, client, target, prometheus, stats
                        )
                        figures[name][0].append(series)
                        figures[name][1].append(took)
                        figures[name][2].append(errors)
                        shown = " ".join(f"{k[-3:]}={v:+.3%}" for k, v in errors.items())
                        print(
                            f"round {round_ + 1} {name}: {series} series, {took * 1000:.1f} ms, {shown}"
                        )
            finally:
                await client.aclose()
    base_series = statistics.median(figures["baseline: 129 stats"][0])
    base_ms = statistics.median(figures["baseline: 129 stats"][1])
    print(f"\n3 unlike runners, {rounds} rounds; largest |error| over the rounds")
    print(
        "| curve | series per run | ratio | curve query ms | ratio | p50 | p90 | p95 | p99 | iteration p95 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (counts, times, runs) in figures.items():
        worst = {k: max(abs(e[k]) for e in runs) for k in PERCENTILE_SLIS}
        cells = " | ".join(f"{worst[k]:.3%}" for k in PERCENTILE_SLIS)
        s, t = statistics.median(counts), statistics.median(times)
        print(
            f"| {name} | {s:.0f} | x{s / base_series:.2f} | {t * 1000:.1f} | x{t / base_ms:.2f}"
            f" | {cells} |"
        )


# --emulate: local runs of 3 k6 processes (devkit/k6multi.py) with these (slow_ms, spread_ms),
# 4 s on 6 VUs and 8 s on 12 VUs; each instance's curve is built from its raw samples with k6's
# own percentile function (what Prometheus would hold) and merged as a get-sli merges it.
EMULATED_RUNS = [({}, 0), ({2: 5}, 12), ({3: 15}, 12), ({2: 3, 3: 10}, 6), ({1: 20}, 0)]


def emulated_vector(instance: str, samples: list[float], stats: tuple[str, ...]) -> list[Any]:
    ordered = sorted(samples)
    series: list[Any] = []
    for stat in stats:
        if stat in ("min", "max"):
            name, value = stat, ordered[0] if stat == "min" else ordered[-1]
        elif stat.startswith("p("):
            name, value = "p" + stat[2:-1].replace(".", ""), percentile(ordered, float(stat[2:-1]))
        else:
            continue
        metric = {"__name__": f"k6_x_{name}", "instance_id": instance}
        series.append({"metric": metric, "value": [0, str(value)]})
    count = {"__name__": "k6_x_count", "instance_id": instance}
    return [*series, {"metric": count, "value": [0, str(len(samples))]}]


async def emulate(runs: int) -> None:
    from devkit.k6multi import run_distributed

    worst: dict[str, dict[str, float]] = {name: {} for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        async with TargetServer() as target:
            for k in range(runs):
                slow, spread = EMULATED_RUNS[k % len(EMULATED_RUNS)]
                vus, duration = (6, "4s") if k < runs // 2 else (12, "8s")
                run = await run_distributed(
                    prometheus_url="http://127.0.0.1:9",  # nothing listens: no store needed
                    target_url=target.url,
                    tags=RunTags("b", "c", "e", str(uuid.uuid4())),
                    workdir=Path(tmp) / str(k),
                    instances=3,
                    vus=vus,
                    duration=duration,
                    fail_every=0,
                    spread_ms=spread,
                    slow_ms=slow,
                )
                instances = [read_samples(path) for path in run.sample_files]
                for name, stats in VARIANTS.items():
                    for slo, (metric, stat) in PERCENTILE_SLIS.items():
                        percent = float(stat[2:-1])
                        vector = [
                            series
                            for i, samples in enumerate(instances)
                            for series in emulated_vector(str(i), samples.of(metric), stats)
                        ]
                        merged = percentiles_of_curves(vector, [percent])[percent]
                        union = sorted(v for samples in instances for v in samples.of(metric))
                        assert isinstance(merged, float), merged
                        error = merged / percentile(union, percent) - 1
                        if abs(error) > abs(worst[name].get(slo, 0.0)):
                            worst[name][slo] = error
                print(
                    f"run {k + 1}: {[len(i.of('http_req_duration')) for i in instances]} requests"
                )
    print(f"\n{runs} local runs of 3 unlike k6 instances; largest error over the runs")
    print("| curve | p50 | p90 | p95 | p99 | iteration p95 |")
    print("|---|---|---|---|---|---|")
    for name, errors in worst.items():
        print(f"| {name} | " + " | ".join(f"{errors[k]:+.3%}" for k in PERCENTILE_SLIS) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--emulate", type=int, default=0, help="local runs instead (no store)")
    arguments = parser.parse_args()
    if arguments.emulate:
        asyncio.run(emulate(arguments.emulate))
    else:
        asyncio.run(main(arguments.rounds))
