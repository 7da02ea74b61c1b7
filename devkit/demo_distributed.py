"""The demo's distributed step: one workload as N k6 processes, merged SLIs beside the truth.

The k6 processes get k6-operator's flags (``devkit/k6multi.py``); the truth comes from their raw
samples (``devkit/k6truth.py``); the SLIs from the service's /preview, as a user would ask.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from devkit.k6multi import run_distributed
from devkit.k6summary import expected_values
from devkit.k6truth import PERCENTILE_SLIS, naive_max_of_instances, read_samples, union_metrics
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn


async def distributed_step(
    service_url: str, prometheus_url: str, target_url: str, workdir: Path, instances: int = 4
) -> bool:
    """Run, ask, print; True when every exact merged SLI agrees with the whole run's truth
    and every percentile has a value (its error against the truth is printed)."""
    tags = RunTags("demo", "staging", "web-distributed", str(uuid.uuid4()))
    run = await run_distributed(
        prometheus_url=prometheus_url,
        target_url=target_url,
        tags=tags,
        workdir=workdir / "distributed",
        instances=instances,
        vus=8,
        duration="5s",
        spread_ms=12,
        slow_ms={instances: 15},
    )
    samples = await asyncio.to_thread(lambda: [read_samples(p) for p in run.sample_files])
    truth = union_metrics(samples)
    expected = expected_values(truth)
    body = {
        "project": tags.project,
        "stage": tags.stage,
        "service": tags.service,
        "start": format_keptn(run.start),
        "end": format_keptn(run.end),
        "context": tags.context,
        "indicators": sorted(expected),
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.post(service_url + "/preview", json=body) as response,
    ):
        indicators: list[dict[str, Any]] = (await response.json())["indicators"]
    header = f"{'indicator':<24} {'whole run':>12} {'merged SLI':>12}  {'agree / error':<14} max of inst."
    print(header)
    print("-" * len(header))
    all_agree = True
    for item in indicators:
        name, got = item["metric"], item["value"]
        expectation = expected[name]
        if name in PERCENTILE_SLIS:
            # Merged percentiles are close, not exact (docs/builtin-slis.md): show
            # the error, beside the naive max of the instances' percentiles.
            naive = naive_max_of_instances(samples, *PERCENTILE_SLIS[name])
            verdict = f"{got / expectation.value - 1:+.2%}" if item["success"] else "NO"
            all_agree &= item["success"]
            detail = f"{naive:.6g} ({naive / expectation.value - 1:+.1%})"
        else:
            agree = item["success"] and expectation.holds(got)
            all_agree &= agree
            verdict, detail = ("yes" if agree else "NO"), ""
        print(f"{name:<24} {expectation.value:>12.6g} {got:>12.6g}  {verdict:<14} {detail}")
    return all_agree
