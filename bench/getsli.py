"""get-sli benchmark: the service (event in → finished event out) vs its queries sent straight.

    python -m bench.getsli [--repeats N] [--minutes 30] [--series 300] [--instances 1]
                           [--json out.json]

Builds a k6-shaped dataset (``bench/dataset.py``), backfills it into a fresh Prometheus, runs
the service in-process against it with a fake Keptn, and for 1, 10 and 20 indicators times, in
rounds that interleave the variants:

S   the service: POST get-sli.triggered → get-sli.finished received by the fake Keptn
a   the finished event's indicator queries sent straight to Prometheus, all at once
p+a the service's run-series check (p), then ``a`` (the Prometheus work the service itself asks for)
b   the indicator queries one after another, as prometheus-service sends them

Then the client's own cost: the same queries through the project's ``PrometheusClient.instant``
(deadline, retries, error mapping) and through bare aiohttp, both concurrent.

Every timed run starts on a freshly collected Prometheus heap, and the variants follow each other
in a cycle where each comes after each other one equally often (``bench/prometheus_gc.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import dataset, prometheus_gc
from devkit.events import get_sli_triggered, keptn_timestamp
from devkit.fake_keptn import FakeKeptn
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from sli_provider.adapters.prometheus import PrometheusClient
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.service.heap import freeze_startup_heap
from sli_provider.sli.builtin import load_builtin_templates
from sli_provider.sli.plan import run_series_queries
from sli_provider.sli.window import SLIWindow

FINISHED = "sh.keptn.event.get-sli.finished"
SIZES = (1, 10, 20)
VARIANTS = ("S", "a", "p+a", "b")
# Every ordered pair of variants once (an Euler circuit of the complete directed graph), so no
# variant always follows the same one: what a run leaves behind (Prometheus's heap, caches)
# falls on each variant alike. One circuit is the warm-up; each further one times every
# variant three times.
CARRY_OVER_BALANCED = ("S", "a", "S", "p+a", "S", "b", "a", "p+a", "a", "b", "p+a", "b")
PER_CIRCUIT = CARRY_OVER_BALANCED.count("S")
WARMUPS = 2  # rounds of the client-cost pairs before the timed ones
KEPT_RETENTION = "10y"
GOAL_S_OVER_A = 1.1  # on the small (--minutes 5) and the large dataset
GOAL_S_OVER_A_INSTANCES = 1.2  # a run split over 8 instances, the curves merged
EVENT_TIMEOUT = 120.0

# The 15 built-ins, the one-indicator case first.
BUILTINS = (
    "http_req_duration_p95",
    *sorted(name for name in load_builtin_templates() if name != "http_req_duration_p95"),
)
# Five more, served by the fake Keptn as a project-level sli.yaml: other stats of other trends.
_RUN = '{$SELECTOR,keptn_context="$CONTEXT"}[$DURATION_SECONDS]'
CUSTOM = {
    "http_req_waiting_p95": f"max(last_over_time(k6_http_req_waiting_p95{_RUN})) * 1000",
    "http_req_waiting_p99": f"max(last_over_time(k6_http_req_waiting_p99{_RUN})) * 1000",
    "http_req_duration_med": f"max(last_over_time(k6_http_req_duration_med{_RUN})) * 1000",
    "http_req_duration_min": f"min(last_over_time(k6_http_req_duration_min{_RUN})) * 1000",
    "iteration_duration_p99": f"max(last_over_time(k6_iteration_duration_p99{_RUN})) * 1000",
}
ALL_INDICATORS = BUILTINS + tuple(CUSTOM)


def custom_sli_yaml() -> str:
    lines = ['spec_version: "1.0"', "indicators:"]
    lines += [f"  {name}: {json.dumps(query)}" for name, query in CUSTOM.items()]
    return "\n".join(lines) + "\n"


class BenchError(RuntimeError):
    pass


# -- statistics ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p90(values: Sequence[float]) -> float:
    """Nearest rank: the smallest value at or above 90 % of the samples."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


# -- Prometheus, straight -----------------------------------------------------------------------


async def prom_query(session: aiohttp.ClientSession, base: str, query: str, at: float) -> None:
    """One instant query as the service sends it (GET, ``time``); the body is parsed too."""
    params = {"query": query, "time": f"{at:.3f}"}
    async with session.get(base + "/api/v1/query", params=params) as response:
        body = await response.json()
    if response.status != 200 or body.get("status") != "success":
        raise BenchError(f"query failed ({response.status}): {query}: {body}")


async def all_at_once(
    session: aiohttp.ClientSession, base: str, queries: Sequence[str], at: float, limit: int = 0
) -> None:
    if limit <= 0:
        await asyncio.gather(*(prom_query(session, base, q, at) for q in queries))
        return
    semaphore = asyncio.Semaphore(limit)

    async def limited(query: str) -> None:
        async with semaphore:
            await prom_query(session, base, query, at)

    await asyncio.gather(*(limited(q) for q in queries))


async def one_by_one(
    session: aiohttp.ClientSession, base: str, queries: Sequence[str], at: float
) -> None:
    for query in queries:
        await prom_query(session, base, query, at)


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    began = time.perf_counter()
    await call()
    return time.perf_counter() - began


@dataclass(frozen=True)
class Run:
    seconds: float
    collections: float  # Prometheus's GC cycles finished during the run
    allocated_mb: float  # what Prometheus allocated during it


# -- the service --------------------------------------------------------------------------------


@dataclass
class Harness:
    session: aiohttp.ClientSession
    service_url: str
    prometheus_url: str
    keptn: FakeKeptn
    tags: RunTags
    start_s: int
    end_s: int
    fresh_heap: bool = True  # each timed run starts after a full collection in Prometheus

    async def measured(self, call: Callable[[], Awaitable[object]]) -> Run:
        """``call`` timed; with ``fresh_heap``, started right after a full collection in
        Prometheus."""
        if self.fresh_heap:
            await prometheus_gc.collect_garbage(self.session, self.prometheus_url)
        before = await prometheus_gc.heap(self.session, self.prometheus_url)
        seconds = await timed(call)
        after = await prometheus_gc.heap(self.session, self.prometheus_url)
        return Run(
            seconds,
            after.collections - before.collections,
            (after.allocated_bytes - before.allocated_bytes) / 1e6,
        )

    def event(self, indicators: Sequence[str]) -> dict[str, Any]:
        return get_sli_triggered(
            project=self.tags.project,
            stage=self.tags.stage,
            service=self.tags.service,
            start=keptn_timestamp(self.start_s),
            end=keptn_timestamp(self.end_s),
            indicators=list(indicators),
            context=self.tags.context,  # the run's context, so the run-series check finds it
        )

    async def get_sli(self, indicators: Sequence[str]) -> tuple[float, dict[str, Any]]:
        """Seconds from POSTing the event to the finished event arriving; and that event."""
        event = self.event(indicators)
        before = len(self._finished())
        began = time.perf_counter()
        async with self.session.post(
            self.service_url + "/",
            json=event,
            headers={"Content-Type": "application/cloudevents+json"},
        ) as response:
            if response.status != 202:
                raise BenchError(f"service answered {response.status}: {await response.text()}")
        finished = await self.keptn.wait_for_events(
            type=FINISHED,
            shkeptncontext=self.tags.context,
            count=before + 1,
            timeout=EVENT_TIMEOUT,
        )
        elapsed = time.perf_counter() - began
        reply = finished[before]
        if reply.get("triggeredid") != event["id"]:
            raise BenchError(
                f"finished event answers {reply.get('triggeredid')}, not {event['id']}"
            )
        return elapsed, reply

    def _finished(self) -> list[dict[str, Any]]:
        return [
            e
            for e in self.keptn.events
            if e.get("type") == FINISHED and e.get("shkeptncontext") == self.tags.context
        ]

    def run_series_query(self) -> str:
        """The service's first query of its run-series check (the one that finds a real run)."""
        return run_series_queries(
            SLIWindow(
                project=self.tags.project,
                stage=self.tags.stage,
                service=self.tags.service,
                start_s=self.start_s,
                end_s=self.end_s,
                context=self.tags.context,
            )
        )[0]


def queries_of(finished: dict[str, Any], indicators: Sequence[str]) -> list[str]:
    """The rendered queries from a finished event; every indicator must have succeeded."""
    data = finished["data"]
    values = data["get-sli"]["indicatorValues"]
    failed = [v for v in values if not v.get("success")]
    if data.get("status") != "succeeded" or failed:
        raise BenchError(f"get-sli did not succeed: {data.get('message')!r}, failed: {failed}")
    if [v["metric"] for v in values] != list(indicators):
        raise BenchError(f"unexpected indicators: {[v['metric'] for v in values]}")
    # Distinct: the percentile built-ins share one curve query, which the service sends once; a
    # baseline that sent it once per indicator would make the service look faster than it is.
    return list(dict.fromkeys(str(v["query"]) for v in values))


@dataclass
class SizeResult:
    size: int
    queries: list[str]
    seconds: dict[str, list[float]] = field(default_factory=dict)
    collections: dict[str, list[float]] = field(default_factory=dict)
    allocated_mb: dict[str, list[float]] = field(default_factory=dict)

    def add(self, variant: str, run: Run) -> None:
        self.seconds.setdefault(variant, []).append(run.seconds)
        self.collections.setdefault(variant, []).append(run.collections)
        self.allocated_mb.setdefault(variant, []).append(run.allocated_mb)

    def summary(self) -> dict[str, float]:
        med = {v: median(s) for v, s in self.seconds.items()}
        out = {f"{v}_median_ms": med[v] * 1000 for v in VARIANTS}
        out |= {f"{v}_p90_ms": p90(self.seconds[v]) * 1000 for v in VARIANTS}
        out |= {f"{v}_allocated_mb": median(self.allocated_mb[v]) for v in VARIANTS}
        out |= {f"{v}_collections": sum(self.collections[v]) for v in VARIANTS}
        out |= {
            "S_over_a": med["S"] / med["a"],
            "S_over_pa": med["S"] / med["p+a"],
            "S_over_b": med["S"] / med["b"],
            "a_over_b": med["a"] / med["b"],
            "S_minus_a_ms": (med["S"] - med["a"]) * 1000,
            "S_minus_pa_ms": (med["S"] - med["p+a"]) * 1000,
        }
        return out


async def measure_size(h: Harness, size: int, repeats: int) -> SizeResult:
    indicators = ALL_INDICATORS[:size]
    _, finished = await h.get_sli(indicators)
    queries = queries_of(finished, indicators)
    probe = h.run_series_query()
    at = float(h.end_s)

    async def service() -> None:
        _, reply = await h.get_sli(indicators)
        queries_of(reply, indicators)

    async def probe_then_all() -> None:
        await prom_query(h.session, h.prometheus_url, probe, at)
        await all_at_once(h.session, h.prometheus_url, queries, at)

    runs: dict[str, Callable[[], Awaitable[object]]] = {
        "S": service,
        "a": lambda: all_at_once(h.session, h.prometheus_url, queries, at),
        "p+a": probe_then_all,
        "b": lambda: one_by_one(h.session, h.prometheus_url, queries, at),
    }
    result = SizeResult(size, queries)
    for circuit in range(1 + math.ceil(repeats / PER_CIRCUIT)):
        for variant in CARRY_OVER_BALANCED:
            run = await h.measured(runs[variant])
            if circuit > 0:
                result.add(variant, run)
    med = {v: f"{median(s) * 1000:.0f}" for v, s in result.seconds.items()}
    progress(f"  {size:>2} indicators: medians (ms) {med}")
    return result


# -- the client's own cost -----------------------------------------------------------------------


@dataclass
class OffloadResult:
    label: str
    concurrency: int
    query_count: int
    client_s: list[float] = field(default_factory=list)
    aiohttp_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        client, direct = median(self.client_s), median(self.aiohttp_s)
        return {
            "client_median_ms": client * 1000,
            "aiohttp_median_ms": direct * 1000,
            "ratio": client / direct,
            "per_query_overhead_ms": (client - direct) * 1000 / self.query_count,
        }


async def measure_offload(
    h: Harness, queries: Sequence[str], label: str, concurrency: int, repeats: int
) -> OffloadResult:
    at = float(h.end_s)
    client = PrometheusClient(
        h.prometheus_url, concurrency=concurrency, timeout=30.0, attempts=1, max_wait=0.1
    )
    try:

        async def via_client() -> None:
            await asyncio.gather(*(client.instant(q, at) for q in queries))

        async def via_aiohttp() -> None:
            await all_at_once(h.session, h.prometheus_url, queries, at, limit=concurrency)

        result = OffloadResult(label, concurrency, len(queries))
        for round_no in range(WARMUPS + repeats):
            pair = [("client", via_client), ("aiohttp", via_aiohttp)]
            if round_no % 2:
                pair.reverse()
            for name, run in pair:
                elapsed = (await h.measured(run)).seconds
                if round_no >= WARMUPS:
                    (result.client_s if name == "client" else result.aiohttp_s).append(elapsed)
        return result
    finally:
        await client.aclose()


# -- orchestration ------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    prometheus = shutil.which("prometheus")
    version = ""
    if prometheus:
        out = subprocess.run([prometheus, "--version"], capture_output=True, text=True, check=False)
        version = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else ""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "prometheus": version,
        "load_average": os.getloadavg(),
    }


async def run_bench(
    built: dataset.BuiltDataset,
    prom_dir: Path,
    repeats: int,
    query_concurrency: int,
    freshness_wait: float,
    fresh_heap: bool,
) -> dict[str, Any]:
    spec = built.spec
    tags = spec.tags
    # A dataset kept with --keep is reused for hours; the devkit's 2 h retention deleted it.
    async with PrometheusServer(prom_dir, retention=KEPT_RETENTION) as prom, FakeKeptn() as keptn:
        keptn.add_scope(tags.project, tags.stage, tags.service)
        keptn.set_resource(custom_sli_yaml(), "k6/sli.yaml", project=tags.project)
        found = await prom.query(f"count({dataset.series_selector(tags)})", at=spec.end_s)
        series = int(float(found[0]["value"][1])) if found else 0
        if series != built.series:
            raise BenchError(
                f"Prometheus has {series} series of the run, expected {built.series} (a dataset "
                "kept by an older bench may have lost its data to Prometheus' 2 h retention: build it again)"
            )
        settings = Settings(
            prometheus_url=prom.url,
            distributor_url=keptn.url,
            query_concurrency=query_concurrency,
            freshness_wait_seconds=freshness_wait,
        )
        async with (
            running_service(settings) as service_url,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        ):
            h = Harness(
                session, service_url, prom.url, keptn, tags, spec.start_s, spec.end_s, fresh_heap
            )
            # The service runs in this process, started as `sli-provider serve` starts it,
            # which then freezes its start-up heap (sli_provider/service/heap.py).
            freeze_startup_heap()
            sizes = []
            for size in SIZES:
                sizes.append(await measure_size(h, size, repeats))
            progress("  client cost")
            twenty = sizes[-1].queries
            trivial = [f"vector({i})" for i in range(len(twenty))]
            offload = [
                await measure_offload(h, twenty, "20 SLI queries", len(twenty), repeats),
                await measure_offload(h, twenty, "20 SLI queries", query_concurrency, repeats),
                await measure_offload(h, trivial, "20 trivial (vector(i))", len(twenty), repeats),
            ]
        if keptn.violations:
            raise BenchError(f"the fake Keptn saw protocol violations: {keptn.violations}")
    return {
        "service_settings": {"query_concurrency": query_concurrency},
        "prometheus_gc": "collected before each timed run" if fresh_heap else "left alone",
        "probe_query": h.run_series_query(),
        "sizes": [
            {
                "size": r.size,
                "queries": r.queries,
                "seconds": r.seconds,
                "collections": r.collections,
                "allocated_mb": r.allocated_mb,
                **r.summary(),
            }
            for r in sizes
        ],
        "offload": [
            {
                "queries": o.label,
                "concurrency": o.concurrency,
                "client_seconds": o.client_s,
                "aiohttp_seconds": o.aiohttp_s,
                **o.summary(),
            }
            for o in offload
        ],
    }


def render(report: dict[str, Any]) -> str:
    d, lines = report["dataset"], []
    lines.append(
        f"dataset: {d['series']} series ({d['series_per_family']} per request-level family"
        f"{' and instance' if d['instances'] > 1 else ''}, {d['families']} families, "
        f"{d['instances']} k6 instance{'s' if d['instances'] > 1 else ''}), {d['samples']:,} samples, {d['minutes']} min at 1 s; "
        f"{d['file_bytes'] / 1e9:.2f} GB OpenMetrics generated in {d['generate_s']:.1f} s, "
        f"backfilled in {d['backfill_s']:.1f} s"
    )
    m = report["machine"]
    lines.append(
        f"machine: {m['cpus']} CPUs, {m['prometheus']}, Python {m['python']}; "
        f"service QUERY_CONCURRENCY={report['service_settings']['query_concurrency']}; "
        f"{len(report['sizes'][0]['seconds']['S'])} timed runs per variant after "
        f"{PER_CIRCUIT} warm-ups; Prometheus's GC {report['prometheus_gc']}"
    )
    lines.append("")
    lines.append("time in ms, median / p90 (S service, a all at once, p+a probe then a, b serial)")
    header = (
        f"{'n':>3} | {'S':>13} | {'a':>13} | {'p+a':>13} | {'b':>13} | "
        f"{'S/a':>5} | {'S/(p+a)':>7} | {'S/b':>5} | {'a/b':>5} | {'S-a':>7} | {'S-(p+a)':>7}"
    )
    lines += [header, "-" * len(header)]
    for s in report["sizes"]:
        cells = [f"{s[f'{v}_median_ms']:6.0f} /{s[f'{v}_p90_ms']:6.0f}" for v in VARIANTS]
        lines.append(
            f"{s['size']:>3} | "
            + " | ".join(cells)
            + f" | {s['S_over_a']:5.2f} | {s['S_over_pa']:7.2f} | {s['S_over_b']:5.2f}"
            + f" | {s['a_over_b']:5.2f} | {s['S_minus_a_ms']:7.0f} | {s['S_minus_pa_ms']:7.0f}"
        )
    top = report["sizes"][-1]
    goal = GOAL_S_OVER_A if d["instances"] == 1 else GOAL_S_OVER_A_INSTANCES
    verdict = "met" if top["S_over_a"] <= goal else "NOT met"
    lines.append(
        f"goal at {top['size']} indicators, S <= {goal} x a: {verdict} (S/a = {top['S_over_a']:.2f}; "
        f"a/b = {top['a_over_b']:.2f} on {m['cpus']} CPUs)"
    )
    lines.append("")
    lines.append(
        "Prometheus per run: MB allocated (median) / GC cycles during the timed runs, all runs"
    )
    for s in report["sizes"]:
        cells = [f"{s[f'{v}_allocated_mb']:5.1f} / {s[f'{v}_collections']:3.0f}" for v in VARIANTS]
        lines.append(
            f"{s['size']:>3} | "
            + " | ".join(f"{v:>3} {c}" for v, c in zip(VARIANTS, cells, strict=True))
        )
    first = report["sizes"][0]
    lines.append(
        f"the probe alone ~ (p+a) - a = {first['p+a_median_ms'] - first['a_median_ms']:.0f} ms "
        f"(at {first['size']} indicator{'s' if first['size'] != 1 else ''})"
    )
    lines.append("")
    lines.append("client cost: PrometheusClient.instant vs bare aiohttp, ms median")
    header = f"{'queries':<24} | {'conc':>4} | {'client':>7} | {'aiohttp':>7} | {'ratio':>5} | {'extra/query':>11}"
    lines += [header, "-" * len(header)]
    for o in report["offload"]:
        lines.append(
            f"{o['queries']:<24} | {o['concurrency']:>4} | {o['client_median_ms']:7.1f} | "
            f"{o['aiohttp_median_ms']:7.1f} | {o['ratio']:5.2f} | {o['per_query_overhead_ms']:9.2f}ms"
        )
    lines.append("")
    lines.append(f"probe query (p): {report['probe_query']}")
    lines.append(f"whole bench: {report['wall_s']:.0f} s")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.getsli", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="timed runs per variant and size, rounded up to a multiple of 3 (default 10)",
    )
    parser.add_argument("--minutes", type=int, default=30, help="length of the k6 run (default 30)")
    parser.add_argument(
        "--series", type=int, default=300, help="series per request-level metric (default 300)"
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="k6 instances the run is split over (instance_id), each with the whole quantile "
        "curve; --series is then per instance (default 1)",
    )
    parser.add_argument(
        "--query-concurrency",
        type=int,
        default=Settings.query_concurrency,
        help="the service's QUERY_CONCURRENCY (default: the service default)",
    )
    parser.add_argument(
        "--freshness-wait",
        type=float,
        default=Settings.freshness_wait_seconds,
        help="the service's FRESHNESS_WAIT_SECONDS (default: the service default; 0: no check)",
    )
    parser.add_argument(
        "--natural-gc",
        action="store_true",
        help="do not collect Prometheus's garbage before each timed run (runs then meet its "
        "collections by their place in the order; for comparison)",
    )
    parser.add_argument("--json", type=Path, help="also write the full results here")
    parser.add_argument(
        "--keep",
        type=Path,
        help="build in this directory and keep it; a later run with the same --minutes, "
        "--series and --instances reuses it",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.series < 2 or args.instances < 1:
        parser.error("--repeats must be >= 1, --series >= 2 and --instances >= 1")
    if not 1 <= args.minutes <= dataset.MAX_MINUTES:
        parser.error(f"--minutes must be 1..{dataset.MAX_MINUTES}")
    return args


def build_or_reuse(args: argparse.Namespace, workdir: Path) -> dataset.BuiltDataset:
    """A fresh dataset, or the one an earlier run built in ``--keep DIR`` with the same shape:
    baseline and candidate runs then alternate on one dataset without backfilling again."""
    prom_dir = workdir / "prometheus"
    record = workdir / "dataset.json"
    shape = {"minutes": args.minutes, "series": args.series, "instances": args.instances}
    if args.keep is not None and record.is_file():
        kept = json.loads(record.read_text(encoding="utf-8"))
        if kept["shape"] == shape:
            tags = RunTags(**kept["tags"])
            spec = dataset.DatasetSpec(tags=tags, start_s=kept["start_s"], **shape)
            progress(f"reusing the dataset in {workdir} (built {kept['built']})")
            return dataset.BuiltDataset(spec=spec, **kept["built_fields"])
        raise BenchError(f"{workdir} holds a dataset of another shape: {kept['shape']}")
    tags = RunTags("bench", "perf", "shop", str(uuid.uuid4()))
    spec = dataset.DatasetSpec(
        tags=tags,
        start_s=dataset.place_window(time.time(), args.minutes),
        minutes=args.minutes,
        series=args.series,
        instances=args.instances,
    )
    progress(
        f"generating {spec.series_count()} series x {spec.points} samples "
        f"({spec.sample_count():,}) and backfilling with promtool ..."
    )
    built = dataset.build(spec, workdir, prom_dir / "data")  # PrometheusServer's TSDB path
    progress(f"  generated in {built.generate_s:.1f} s, backfilled in {built.backfill_s:.1f} s")
    if args.keep is not None:
        fields = {k: v for k, v in asdict(built).items() if k != "spec"}
        fields["blocks"] = list(built.blocks)
        kept = {
            "shape": shape,
            "tags": asdict(tags),
            "start_s": spec.start_s,
            "built": time.strftime("%Y-%m-%d %H:%M:%S"),
            "built_fields": fields,
        }
        record.write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")
    return built


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    began = time.perf_counter()
    built = build_or_reuse(args, workdir)
    spec, tags, prom_dir = built.spec, built.spec.tags, workdir / "prometheus"
    report = asyncio.run(
        run_bench(
            built,
            prom_dir,
            args.repeats,
            args.query_concurrency,
            args.freshness_wait,
            fresh_heap=not args.natural_gc,
        )
    )
    report["freshness_wait_seconds"] = args.freshness_wait
    report["machine"] = machine()
    report["repeats"] = args.repeats
    report["dataset"] = {
        "series": built.series,
        "series_per_family": spec.series,
        "instances": spec.instances,
        "families": len(spec.families()),
        "samples": built.samples,
        "minutes": spec.minutes,
        "window": [spec.start_s, spec.end_s],
        "file_bytes": built.file_bytes,
        "generate_s": built.generate_s,
        "backfill_s": built.backfill_s,
        "blocks": list(built.blocks),
        "context": tags.context,
        "spec": {k: v for k, v in asdict(spec).items() if k != "tags"},
    }
    report["wall_s"] = time.perf_counter() - began
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="sli-bench-") as tmp:
            report = run(args, Path(tmp))
    print(render(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
