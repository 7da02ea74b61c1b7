"""A burst of get-sli events at once: what MAX_EVENTS_IN_FLIGHT bounds, and what it costs.

    python -m bench.burst [--events 3000] [--cap 200] [--baseline-cap 100000] [--json out.json]

A real ``sli-provider serve`` process, a real Prometheus holding one k6 run (devkit's 3 s load
run) and the devkit's fake Keptn. All ``--events`` get-sli.triggered events are POSTed at once
(as the distributor would forward a burst); an event answered 503 is posted again after its
Retry-After, at most 3 times, as Keptn's distributor retries, and is lost after that. Each run
measures the service's peak RSS (VmHWM), the time from the first POST to the last finished
event, the 503 refusals, the events lost, and checks that every event taken got exactly one
started event and one finished event. Three runs side by side: the cap under test without a
journal (503 beyond it), the same cap with JOURNAL_PATH (the events beyond it wait on disk), and
a baseline whose cap never binds; ratios are against the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from devkit.events import get_sli_triggered, keptn_timestamp
from devkit.fake_keptn import FakeKeptn
from devkit.k6run import LoadRun, run_load
from devkit.prometheus import PrometheusServer
from devkit.service import ServiceProcess, serve_process
from devkit.target import TargetServer
from sli_provider.k6.invocation import RunTags

STARTED, FINISHED = "sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"
INDICATORS = ["http_req_duration_p95", "http_req_failed_rate", "http_reqs_total", "vus_max"]
DISTRIBUTOR_RETRIES = 3
CONNECTIONS = 1000  # the distributor's forwards run concurrently, one connection each
DEADLINE = 900.0


@dataclass
class BurstResult:
    cap: int
    journal: bool
    events: int
    accepted: int
    refusals: int  # 503 answers, retries included
    lost: int  # refused on every try
    seconds_to_last_finished: float
    peak_rss_mib: float
    doubled: int
    unanswered: int
    # What the events taken but not answered once got instead, e.g. "finished" (no started event).
    patterns: dict[str, int]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


async def post_until_taken(
    session: aiohttp.ClientSession, url: str, event: dict[str, Any], statuses: Counter[int]
) -> bool:
    for attempt in range(1 + DISTRIBUTOR_RETRIES):
        async with session.post(url + "/", json=event) as response:
            statuses[response.status] += 1
            if response.status == 202:
                return True
            if response.status != 503:
                raise RuntimeError(f"unexpected HTTP {response.status}: {await response.text()}")
            wait = float(response.headers.get("Retry-After", "1"))
        if attempt < DISTRIBUTOR_RETRIES:
            await asyncio.sleep(wait * (attempt + 1))
    return False


async def burst(
    cap: int,
    journal: bool,
    count: int,
    prometheus: PrometheusServer,
    run: LoadRun,
    tags: RunTags,
    work: Path,
    logs: Path,
) -> BurstResult:
    events = [
        get_sli_triggered(
            project=tags.project,
            stage=tags.stage,
            service=tags.service,
            start=keptn_timestamp(run.start),
            end=keptn_timestamp(run.end),
            indicators=INDICATORS,
            context=tags.context,
        )
        for _ in range(count)
    ]
    async with FakeKeptn() as keptn:
        env = {
            "PROMETHEUS_URL": prometheus.url,
            "DISTRIBUTOR_URL": keptn.url,
            "RUNNER_ENABLED": "false",
            "SLI_CONFIG_DIR": str(work),
            "MAX_EVENTS_IN_FLIGHT": str(cap),
            "LOG_LEVEL": "WARNING",
        }
        if journal:
            env["JOURNAL_PATH"] = str(work / f"journal-{cap}.db")
        log = logs / f"service-cap{cap}{'-journal' if journal else ''}.log"
        async with serve_process(env, log) as service:
            statuses: Counter[int] = Counter()
            connector = aiohttp.TCPConnector(limit=CONNECTIONS)
            async with aiohttp.ClientSession(connector=connector) as session:
                began = time.monotonic()
                taken = await asyncio.gather(
                    *(post_until_taken(session, service.url, e, statuses) for e in events)
                )
            accepted = sum(taken)
            await keptn.wait_for_events(type=FINISHED, count=accepted, timeout=DEADLINE)
            elapsed = time.monotonic() - began
            await asyncio.sleep(1)  # a double would show by now
            rss = peak_rss_mib(service.process.pid)
            await _check_alive(service)
        replies: dict[str, list[str]] = {}
        for reply in keptn.events:
            replies.setdefault(reply["triggeredid"], []).append(reply["type"])
    doubled = sum(1 for types in replies.values() if len(types) > 2)
    answered_once = sum(1 for types in replies.values() if types == [STARTED, FINISHED])
    patterns = Counter(
        " ".join(t.rpartition(".")[2] for t in types) or "nothing"
        for types in (replies.get(e["id"], []) for e in events)
        if types != [STARTED, FINISHED]
    )
    patterns.pop("nothing", None)  # refused and lost: counted as lost
    return BurstResult(
        cap=cap,
        journal=journal,
        events=count,
        accepted=accepted,
        refusals=statuses[503],
        lost=count - accepted,
        seconds_to_last_finished=round(elapsed, 2),
        peak_rss_mib=round(rss, 1),
        doubled=doubled,
        unanswered=accepted - answered_once - doubled,
        patterns=dict(patterns),
    )


async def _check_alive(service: ServiceProcess) -> None:
    status, _ = await service.get("/health")
    if status != 200:
        raise RuntimeError(f"the service is not healthy after the burst: {status}")


async def run_bench(args: argparse.Namespace, work: Path) -> list[BurstResult]:
    tags = RunTags(project="burst", stage="staging", service="web", context=str(uuid.uuid4()))
    async with PrometheusServer(work / "prometheus") as prometheus, TargetServer() as target:
        print("recording one k6 run ...", file=sys.stderr)
        run = await run_load(
            prometheus_url=prometheus.url, target_url=target.url, tags=tags, workdir=work / "k6"
        )
        results = []
        for cap, journal in ((args.cap, False), (args.cap, True), (args.baseline_cap, False)):
            print(
                f"burst of {args.events} events, MAX_EVENTS_IN_FLIGHT={cap}"
                f"{', JOURNAL_PATH' if journal else ''} ...",
                file=sys.stderr,
            )
            logs = args.logs or work
            logs.mkdir(parents=True, exist_ok=True)
            results.append(
                await burst(cap, journal, args.events, prometheus, run, tags, work, logs)
            )
        return results


def render(results: Sequence[BurstResult]) -> str:
    *runs, baseline = results
    heads = [f"cap {r.cap}{' + JOURNAL_PATH' if r.journal else ''}" for r in runs]
    lines = [
        "| | " + " | ".join(heads) + f" | baseline (cap {baseline.cap}) |",
        "|---|" + "---|" * (len(runs) + 1),
    ]
    rows = [
        ("events taken", "accepted", "{}"),
        ("503 refusals (retries included)", "refusals", "{}"),
        ("lost after 3 retries", "lost", "{}"),
        ("time to the last finished (s)", "seconds_to_last_finished", "{:.2f}"),
        ("peak RSS (MiB)", "peak_rss_mib", "{:.1f}"),
        ("doubled", "doubled", "{}"),
        ("taken but not answered once", "unanswered", "{}"),
    ]
    for label, key, fmt in rows:
        cells = []
        for run in runs:
            value, base = getattr(run, key), getattr(baseline, key)
            ratio = f" ({value / base:.2f}x)" if isinstance(value, float) and base else ""
            cells.append(fmt.format(value) + ratio)
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {fmt.format(getattr(baseline, key))} |"
        )
    for run in results:
        if run.patterns:
            lines.append(
                f"\ncap {run.cap}{' + JOURNAL_PATH' if run.journal else ''}: replies of "
                f"the events not answered once: {run.patterns}"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.burst", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--cap", type=int, default=200, help="MAX_EVENTS_IN_FLIGHT under test")
    parser.add_argument(
        "--baseline-cap",
        type=int,
        default=100_000,
        help="a cap the burst never reaches (the service without one)",
    )
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--logs", type=Path, help="keep the services' logs in this directory")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
        results = asyncio.run(run_bench(args, Path(tmp)))
    print(render(results))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    broken = [r for r in results if r.doubled or r.unanswered]
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
