"""The runner's remote-write check against a real VictoriaMetrics, whose new series show late."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from devkit.k6run import load_env, load_plan
from devkit.target import TargetServer
from devkit.victoria import VictoriaMetricsServer
from sli_provider.adapters.prometheus import PrometheusClient
from sli_provider.k6.invocation import RunTags
from sli_provider.runner.core import run_plan
from sli_provider.runner.local import LocalK6Backend
from sli_provider.runner.series import FINAL_PUSH_WAIT_SECONDS, prometheus_series_check
from sli_provider.sli.plan import run_iterations_query
from sli_provider.sli.results import single_value
from sli_provider.sli.window import SLIWindow


async def test_runner_finds_the_run_in_victoriametrics_though_its_series_show_late(
    target: TargetServer, tmp_path: Path
) -> None:
    """A run that ends in a just-started VictoriaMetrics' first ~11 s: its series are not
    searchable when k6 exits (the store's first periodic index update is still to come), and the
    check must wait for them instead of reporting "k6 wrote no metrics". The store's
    -search.latencyOffset is 1 s so that what is measured is this delay, not that one."""
    tags = RunTags("shop", "staging", "web", str(uuid.uuid4()))
    async with VictoriaMetricsServer(tmp_path / "vm", latency_offset="1s") as store:
        plan = load_plan(
            prometheus_url=store.url,
            tags=tags,
            script=None,
            timeout=60,
            script_env=load_env(target.url, 2, "2s", 0, 0, tmp_path / "summary.json"),
        )
        client = PrometheusClient(store.url, concurrency=2, timeout=5, attempts=1, max_wait=0.1)
        try:
            result = await run_plan(
                plan,
                LocalK6Backend(work_dir=tmp_path),
                series_check=prometheus_series_check(client),
            )
            checked_for = time.time() - result.outcome.ended_at
            window = SLIWindow(
                project=tags.project,
                stage=tags.stage,
                service=tags.service,
                start_s=result.outcome.started_at,
                end_s=result.outcome.ended_at,
                context=tags.context,
            )
            seen = single_value(await client.instant(run_iterations_query(window), window.end_s))
        finally:
            await client.aclose()

    assert result.wrote_series is True, result.missing_series_message()
    assert seen == result.outcome.summary.metrics["iterations"]["count"]
    assert checked_for < FINAL_PUSH_WAIT_SECONDS + 1
