"""``make demo``: a real k6 run, then Keptn's get-sli.triggered answered by the real service.

Everything runs on loopback: Prometheus with the remote-write receiver, a small HTTP target,
a fake Keptn control plane (in the distributor's place), k6, and ``sli-provider serve`` as a
child process. The demo prints k6's own summary next to the values of get-sli.finished.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from devkit.events import get_sli_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6run import LoadRun, run_load
from devkit.k6summary import expected_values
from devkit.ports import free_port
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn, parse_keptn
from sli_provider.sli.builtin import load_builtin_templates


@asynccontextmanager
async def sli_provider_process(env: dict[str, str], log_path: Path) -> AsyncIterator[str]:
    """``sli-provider serve`` as its own process; stopped with SIGTERM like Kubernetes does."""
    port = free_port()
    executable = Path(sys.executable).parent / "sli-provider"
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "sli_provider"]
    child_env = {"PATH": os.environ.get("PATH", ""), **env, "PORT": str(port), "HOST": "127.0.0.1"}
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command, "serve", env=child_env, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            await _wait_healthy(url, process)
            yield url
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _wait_healthy(url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"sli-provider exited with {process.returncode} at start")
            try:
                async with session.get(
                    url + "/health", timeout=aiohttp.ClientTimeout(total=1)
                ) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError("sli-provider did not become healthy within 30 s")


def print_side_by_side(run: LoadRun, finished: dict[str, Any]) -> bool:
    section = finished["data"]["get-sli"]
    window = parse_keptn(section["end"]) - parse_keptn(section["start"])
    expected = expected_values(run.summary, window)
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
    k6_rate = run.summary["metrics"]["http_reqs"]["values"]["rate"]
    print(
        f"\n(k6's own http_reqs.rate is {k6_rate:.6g}/s over its test duration; the SLI divides by "
        "the event's window, which also holds k6's start-up.)"
    )
    return all_agree


async def demo(workdir: Path) -> int:
    tags = RunTags(project="demo", stage="staging", service="web", context=str(uuid.uuid4()))
    async with (
        PrometheusServer(workdir / "prometheus") as prometheus,
        TargetServer() as target,
        FakeKeptn() as keptn,
    ):
        print(
            f"Prometheus {prometheus.url} (remote-write receiver on), target {target.url}, "
            f"fake Keptn control plane {keptn.url}"
        )
        print(
            f"k6: 3 VUs for 5 s against {target.url}, every 5th iteration hits /fail, "
            f"tagged keptn_context={tags.context}"
        )
        (workdir / "k6").mkdir(parents=True, exist_ok=True)
        run = await run_load(
            prometheus_url=prometheus.url,
            target_url=target.url,
            tags=tags,
            workdir=workdir / "k6",
            vus=3,
            duration="5s",
            fail_every=5,
        )
        print(
            f"k6 exited with {run.outcome.returncode} "
            f"({'thresholds crossed' if run.thresholds_crossed else 'thresholds held'})"
        )
        env = {"PROMETHEUS_URL": prometheus.url, "DISTRIBUTOR_URL": keptn.url, "LOG_LEVEL": "INFO"}
        async with sli_provider_process(env, workdir / "sli-provider.log") as url:
            event = get_sli_triggered(
                project=tags.project,
                stage=tags.stage,
                service=tags.service,
                start=format_keptn(run.start),
                end=format_keptn(run.end),
                indicators=sorted(load_builtin_templates()),
                context=tags.context,
            )
            print(f"sli-provider serve at {url}; sending get-sli.triggered {event['id']}")
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    url + "/", json=event, headers={"Content-Type": "application/cloudevents+json"}
                ) as response,
            ):
                print(f"  → HTTP {response.status} {await response.text()}")
            (finished,) = await keptn.wait_for_events(
                type="sh.keptn.event.get-sli.finished", shkeptncontext=tags.context, timeout=60
            )
        agree = print_side_by_side(run, finished)
        if keptn.violations:
            print("Keptn protocol violations:", *keptn.violations, sep="\n  ")
            return 1
        print(
            f"\nAll values agree with k6's summary: {'yes' if agree else 'NO'}. "
            f"Service log: {workdir / 'sli-provider.log'}"
        )
        return 0 if agree else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep files here (default: temp)"
    )
    args = parser.parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(demo(args.workdir))
    with tempfile.TemporaryDirectory(prefix="sli-provider-demo-") as tmp:
        return asyncio.run(demo(Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
