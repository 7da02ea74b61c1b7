"""Built-in SLIs of one run split over N real k6 processes (k6-operator's flags), merged as one run.

The truth is computed from every instance's raw samples (``--out json``), never from the
service's own numbers: counts exactly, rates to 1e-6, average and max to 0.1 %, every percentile
within the bound docs/builtin-slis.md states, of the union's exact percentile (one instance:
k6's own value exactly). The naive max-of-instances error is printed beside the merged one
(``-s``) for that page's table.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devkit.fake_keptn import FakeKeptn
from devkit.k6multi import DistributedRun, operator_args, run_distributed
from devkit.k6summary import expected_values, relative_errors
from devkit.k6truth import PERCENTILE_SLIS, naive_max_of_instances, read_samples, union_metrics
from devkit.service import running_service
from devkit.stores import MetricsStore
from devkit.target import TargetServer
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn
from sli_provider.sli.builtin import load_builtin_templates

BUILTINS = sorted(load_builtin_templates())
# What docs/builtin-slis.md states for merged percentiles: measured within 1.2 % of the union's exact
# percentile on these runs (a sparse p99 tail of a few hundred samples per instance), held to 2 %.
MERGED_PERCENTILE_BOUND = 0.02


def test_operator_flags_match_k6_operator() -> None:
    assert operator_args(2, 4, "tr", "127.0.0.1:1") == (
        "--execution-segment=1/4:2/4",
        "--execution-segment-sequence=0,1/4,2/4,3/4,1",
        "--paused",
        "--address=127.0.0.1:1",
        "--tag",
        "instance_id=2",
        "--tag",
        "testrun_name=tr",
    )
    # One runner: k6-operator gives no segment flags.
    assert operator_args(1, 1, "tr", "a:1")[0] == "--paused"
    with pytest.raises(ValueError):
        operator_args(0, 2, "tr", "a:1")


@pytest.fixture
async def preview_url(store: MetricsStore, fake_keptn: FakeKeptn) -> AsyncIterator[str]:
    settings = Settings(
        prometheus_url=store.url,
        distributor_url=fake_keptn.url,
        query_attempts=2,
        http_timeout_seconds=5,
        query_timeout_seconds=10,
    )
    async with running_service(settings) as url:
        yield url + "/preview"


async def merged_slis(url: str, run: DistributedRun, tags: RunTags) -> dict[str, dict[str, Any]]:
    body = {
        "project": tags.project,
        "stage": tags.stage,
        "service": tags.service,
        "start": format_keptn(run.start),
        "end": format_keptn(run.end),
        "context": tags.context,
        "indicators": BUILTINS,
    }
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        return {i["metric"]: i for i in (await response.json())["indicators"]}


@pytest.mark.parametrize(
    ("instances", "slow_ms"),
    [(1, {}), (2, {}), (4, {}), (2, {2: 15})],
    ids=["one", "two", "four", "two-one-slower"],
)
async def test_builtins_merge_the_instances_as_one_run(
    instances: int,
    slow_ms: dict[int, int],
    store: MetricsStore,
    target: TargetServer,
    preview_url: str,
    tmp_path: Path,
) -> None:
    """In each store. Before the query the test waits until the store shows all it holds
    (``store.settle()``; VictoriaMetrics: its 1 s latency offset and up to ~11 s for new series,
    one metric before another): this test is about the values, not about when they show."""
    tags = RunTags("multi", "staging", "web", str(uuid.uuid4()))
    run = await run_distributed(
        prometheus_url=store.url,
        target_url=target.url,
        tags=tags,
        workdir=tmp_path,
        instances=instances,
        vus=4,
        duration="3s",
        spread_ms=12,
        slow_ms=slow_ms,
    )
    await store.settle()
    samples = [read_samples(path) for path in run.sample_files]
    truth = union_metrics(samples)
    if instances == 1:
        # The truth is computed the way k6 computes its summary.
        own = run.instances[0].summary["metrics"]
        assert truth["http_reqs"]["count"] == own["http_reqs"]["values"]["count"]
        assert truth["http_req_duration"]["p(95)"] == pytest.approx(
            own["http_req_duration"]["values"]["p(95)"], rel=1e-9
        )
    got = await merged_slis(preview_url, run, tags)
    assert all(v["success"] for v in got.values()), got
    # A computed built-in still shows the query it was computed from.
    assert 'k6_http_req_duration_(p[0-9]+|min|max)"' in got["http_req_duration_p95"]["query"]

    exact = {n: e for n, e in expected_values(truth).items() if n not in PERCENTILE_SLIS}
    values = {name: got[name]["value"] for name in exact}
    wrong = {n: (values[n], e.value) for n, e in exact.items() if not e.holds(values[n])}
    print(f"\n{store.store_name} N={instances}: {relative_errors(values, exact)}")  # -s
    assert wrong == {}, wrong

    errors = {}
    for name, (metric, stat) in PERCENTILE_SLIS.items():
        exact = truth[metric][stat]
        errors[name] = (
            got[name]["value"] / exact - 1,
            naive_max_of_instances(samples, metric, stat) / exact - 1,
        )
    print(f"\n{store.store_name} N={instances} slow={slow_ms} (merged, naive max) relative errors:")
    for name, (merged, naive) in errors.items():
        print(f"  {name}: {merged:+.4%} {naive:+.4%}")
    if instances == 1:
        assert all(merged == pytest.approx(0, abs=1e-9) for merged, _ in errors.values())
    assert all(abs(merged) <= MERGED_PERCENTILE_BOUND for merged, _ in errors.values()), errors
