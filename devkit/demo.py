"""``make demo``: the whole pipeline, with this module playing Keptn's part.

Everything runs on loopback: Prometheus with the remote-write receiver, a small HTTP target,
a fake Keptn control plane (in the distributor's place) and ``sli-provider serve`` as a child
process. The demo sends test.triggered (the service runs k6), waits for test.finished, asks for
the SLIs of that run with get-sli.triggered, and prints k6's thresholds and summary next to the
get-sli values. Last, one workload runs as 4 k6 processes started like k6-operator's runners,
and the merged SLIs are printed beside the whole run's exact numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from devkit.cli import command_env, sli_provider_command
from devkit.demo_distributed import distributed_step
from devkit.events import get_sli_triggered, make_test_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6run import LOAD_SCRIPT
from devkit.k6summary import Expectation, expected_values
from devkit.prometheus import PrometheusServer
from devkit.service import serve_process
from devkit.target import TargetServer
from sli_provider.keptn.timestamps import parse_keptn
from sli_provider.sli.builtin import load_builtin_templates


def print_thresholds(test: dict[str, Any]) -> None:
    k6 = test["data"].get("k6", {})
    print(
        f"\ntest.finished: status={test['data']['status']} result={test['data']['result']} — "
        f"{test['data'].get('message', '')}"
    )
    print(
        f"  window {test['data']['test']['start']} → {test['data']['test']['end']}, "
        f"k6 exit {k6.get('exitCode')}, {k6.get('durationMs', 0) / 1000:.2f} s"
    )
    for threshold in k6.get("thresholds", []):
        verdict = "held" if threshold["ok"] else "CROSSED"
        print(f"  threshold {threshold['metric']}: {threshold['threshold']:<14} {verdict}")


def print_side_by_side(test: dict[str, Any], finished: dict[str, Any]) -> bool:
    section = finished["data"]["get-sli"]
    window = parse_keptn(section["end"]) - parse_keptn(section["start"])
    expected = expected_values(test["data"]["k6"]["metrics"])
    # k6 does not state a rate over the event's window; its count over that window is the truth.
    count = test["data"]["k6"]["metrics"]["http_reqs"]["count"]
    expected["http_reqs_per_second"] = Expectation(
        count / window, rel=1e-6, source="http_reqs.count / window"
    )
    print(
        f"\nget-sli.finished: status={finished['data']['status']} "
        f"result={finished['data']['result']} — {finished['data'].get('message', '')}\n"
    )
    header = f"{'indicator':<24} {'k6 summary':>14} {'get-sli value':>14}  {'agree':<5}  k6 source"
    print(header)
    print("-" * len(header))
    all_agree = True
    for item in section["indicatorValues"]:
        name, got = item["metric"], item["value"]
        expectation = expected.get(name)
        if expectation is None or not item["success"]:
            all_agree = False
            print(f"{name:<24} {'-':>14} {got:>14.6g}  {'NO':<5}  {item.get('message', '')}")
            continue
        agree = expectation.holds(got)
        all_agree &= agree
        print(
            f"{name:<24} {expectation.value:>14.6g} {got:>14.6g}  {'yes' if agree else 'NO':<5}  "
            f"{expectation.source}"
        )
    k6_rate = test["data"]["k6"]["metrics"]["http_reqs"]["rate"]
    print(
        f"\n(k6's own http_reqs.rate is {k6_rate:.6g}/s over its test duration; the SLI divides by "
        "the event's window, which also holds k6's start-up.)"
    )
    return all_agree


def workloads(slow_ms: int) -> str:
    return (
        "workloads:\n"
        "  - teststrategy: performance\n"
        "    script: k6/load.js\n"
        f'    env: {{VUS: "3", DURATION: "5s", FAIL_EVERY: "5", SLOW_MS: "{slow_ms}"}}\n'
    )


async def send(url: str, event: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/", json=event, headers={"Content-Type": "application/cloudevents+json"}
        ) as response,
    ):
        print(f"  → {event['type']} {event['id']}: HTTP {response.status} {await response.text()}")


PROJECT, STAGE, SERVICE = "demo", "staging", "web"
SLO_FILE = Path(__file__).resolve().parent.parent / "examples" / "slo.yaml"


async def pipeline(
    url: str, keptn: FakeKeptn, target: TargetServer
) -> tuple[dict[str, Any], dict[str, Any]]:
    """shipyard's test.triggered, then lighthouse's get-sli.triggered for the same context."""
    trigger = make_test_triggered(
        project=PROJECT,
        stage=STAGE,
        service=SERVICE,
        teststrategy="performance",
        uris_local=[target.url],
    )
    context = trigger["shkeptncontext"]
    await send(url, trigger)
    (test,) = await keptn.wait_for_events(
        type="sh.keptn.event.test.finished", shkeptncontext=context, timeout=120
    )
    print_thresholds(test)
    print("\n   lighthouse: get-sli.triggered for the same context and the test's window")
    ask = get_sli_triggered(
        project=PROJECT,
        stage=STAGE,
        service=SERVICE,
        start=test["data"]["test"]["start"],
        end=test["data"]["test"]["end"],
        indicators=sorted(load_builtin_templates()),
        context=context,
    )
    await send(url, ask)
    (finished,) = await keptn.wait_for_events(
        type="sh.keptn.event.get-sli.finished", shkeptncontext=context, timeout=60
    )
    return test, finished


async def gate(workdir: Path, finished: dict[str, Any], run: int) -> str:
    """``sli-provider evaluate`` on the get-sli values, as a CI job would run it."""
    values = workdir / f"get-sli-finished-{run}.json"
    values.write_text(json.dumps(finished))
    common = [
        "evaluate",
        "--slo",
        str(SLO_FILE),
        "--project",
        PROJECT,
        "--stage",
        STAGE,
        "--service",
        SERVICE,
        "--values",
        str(values),
        "--history",
        str(workdir / "history.sqlite3"),
    ]
    table = await _cli([*common, "--no-store"])
    print(table.stdout.rstrip())
    report = workdir / "report.html"
    done = await _cli([*common, "--format", "html", "--output", str(report)])
    verdict = {0: "pass", 1: "fail", 2: "errored"}.get(done.returncode, "?")
    if "WARNING" in done.stderr:
        verdict = "warning"
    print(f"   gate exit code {done.returncode}; HTML report: {report}")
    return verdict


async def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        sli_provider_command(*args),
        env=command_env(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def demo(workdir: Path) -> int:
    async with (
        PrometheusServer(workdir / "prometheus") as prometheus,
        TargetServer() as target,
        FakeKeptn() as keptn,
    ):
        print(
            f"Prometheus {prometheus.url} (remote-write receiver on), target {target.url}, "
            f"Keptn's part played by {keptn.url}"
        )
        keptn.set_resource(
            LOAD_SCRIPT.read_bytes(), "k6/load.js", project=PROJECT, stage=STAGE, service=SERVICE
        )
        env = {
            "PROMETHEUS_URL": prometheus.url,
            "DISTRIBUTOR_URL": keptn.url,
            "RUNNER_WORK_DIR": str(workdir),
        }
        async with serve_process(env, workdir / "sli-provider.log") as service:
            url = service.url
            print(f"sli-provider serve at {url}")
            print(
                "\n1. shipyard: test.triggered (teststrategy performance; k6: 3 VUs, 5 s, "
                "every 5th iteration hits /fail)"
            )
            keptn.set_resource(
                workloads(0), "k6/k6.conf.yaml", project=PROJECT, stage=STAGE, service=SERVICE
            )
            test, finished = await pipeline(url, keptn, target)
            agree = print_side_by_side(test, finished)
            print(f"\n   All values agree with k6's summary: {'yes' if agree else 'NO'}")
            print(f"\n2. the quality gate: {SLO_FILE.name} scored like lighthouse scores it")
            first = await gate(workdir, finished, 1)

            print(
                "\n3. the same test against a deliberately slower target (each request waits "
                "30 ms): the relative criterion compares with run 1"
            )
            keptn.set_resource(
                workloads(30), "k6/k6.conf.yaml", project=PROJECT, stage=STAGE, service=SERVICE
            )
            _, slower = await pipeline(url, keptn, target)
            second = await gate(workdir, slower, 2)

            print(
                "\n4. one workload split over 4 k6 processes with k6-operator's flags "
                "(execution segments, instance_id, paused then resumed; instance 4 hits a "
                "slower path): the merged SLIs beside the whole run's truth from the raw "
                "samples, and the naive max of the instances' percentiles"
            )
            merged = await distributed_step(url, prometheus.url, target.url, workdir)
            print(f"\n   Counts, rates, avg, max agree exactly: {'yes' if merged else 'NO'}")
        if keptn.violations:
            print("Keptn protocol violations:", *keptn.violations, sep="\n  ")
            return 1
        print(
            f"\nGate verdicts: run 1 {first.upper()}, run 2 (slower) {second.upper()}. "
            f"Report: {workdir / 'report.html'}; service log: {workdir / 'sli-provider.log'}"
        )
        gates_ok = first == "pass" and second in ("warning", "fail")
        return 0 if agree and merged and gates_ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("demo-output"),
        help="where the report, history and logs go (emptied first)",
    )
    args = parser.parse_args()
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    return asyncio.run(demo(args.workdir.resolve()))


if __name__ == "__main__":
    raise SystemExit(main())
