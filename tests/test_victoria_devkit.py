"""The devkit's VictoriaMetrics is a real store k6 writes into, started and stopped like Prometheus."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import aiohttp
import pytest

from devkit.k6run import LoadRun, load_env, load_plan
from devkit.stores import MetricsStore
from devkit.target import TargetServer
from devkit.victoria import NOT_FOUND_MESSAGE, VictoriaMetricsError, VictoriaMetricsServer
from sli_provider.k6.invocation import RunTags
from sli_provider.runner.core import run_plan
from sli_provider.runner.local import LocalK6Backend

# Metric families every run of load.js writes, read by the built-in SLIs.
RUN_FAMILIES = {
    "k6_vus_max",
    "k6_iterations_total",
    "k6_http_reqs_total",
    "k6_http_req_failed_rate",
    "k6_checks_rate",
    "k6_http_req_duration_p95",
    "k6_data_sent_total",
}


async def test_store_holds_the_runs_request_count(
    store: MetricsStore, store_load_run: LoadRun, load_tags: RunTags
) -> None:
    """k6's remote write lands in either store as one series per metric, count exact."""
    window = math.ceil(store_load_run.end - store_load_run.start) + 1
    selector = f'k6_http_reqs_total{{keptn_context="{load_tags.context}"}}'

    series = await store.query(f"last_over_time({selector}[{window}s])", at=store_load_run.end)

    assert len(series) == 1
    assert series[0]["metric"]["keptn_service"] == "web"
    expected = store_load_run.summary["metrics"]["http_reqs"]["values"]["count"]
    assert float(series[0]["value"][1]) == expected


async def test_default_latency_offset_is_what_users_meet(tmp_path: Path) -> None:
    async with VictoriaMetricsServer(tmp_path) as server, aiohttp.ClientSession() as session:
        flags = await _flags(session, server.url)
    assert 'name="search.latencyOffset", value="30s"' in flags


async def test_short_latency_offset_only_when_asked(
    victoria_short_offset: VictoriaMetricsServer,
) -> None:
    async with aiohttp.ClientSession() as session:
        flags = await _flags(session, victoria_short_offset.url)
    assert 'name="search.latencyOffset", value="1s"' in flags


async def test_path_prefix_serves_everything_under_it(tmp_path: Path) -> None:
    async with (
        VictoriaMetricsServer(tmp_path, path_prefix="/vm") as server,
        aiohttp.ClientSession() as session,
    ):
        assert server.url.endswith("/vm")
        assert await server.query("vector(1)") != []
        root = server.url.removesuffix("/vm")
        async with session.get(root + "/api/v1/query", params={"query": "1"}) as response:
            assert response.status != 200


async def test_victoria_reports_a_missing_binary(tmp_path: Path) -> None:
    server = VictoriaMetricsServer(tmp_path, binary=str(tmp_path / "no-victoria-metrics"))

    with pytest.raises(FileNotFoundError, match="make setup"):
        await server.__aenter__()
    assert NOT_FOUND_MESSAGE.startswith("victoria-metrics not found on PATH")


async def test_victoria_that_dies_early_reports_its_log(tmp_path: Path) -> None:
    server = VictoriaMetricsServer(tmp_path, extra_args=["-no-such-flag"])

    with pytest.raises(VictoriaMetricsError, match="exited with code") as caught:
        await server.__aenter__()
    assert "no-such-flag" in str(caught.value)


async def _flags(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url + "/metrics", timeout=aiohttp.ClientTimeout(total=5)) as response:
        return await response.text()


async def test_settle_waits_until_every_series_of_a_run_shows(
    target: TargetServer, tmp_path: Path
) -> None:
    """A run that ends in a just-started VictoriaMetrics' first ~11 s: some of its series are not
    searchable yet when k6 exits; after settle() every metric family of the run is."""
    tags = RunTags("shop", "staging", "web", str(uuid.uuid4()))
    async with VictoriaMetricsServer(tmp_path / "vm", latency_offset="1s") as store:
        plan = load_plan(
            prometheus_url=store.url,
            tags=tags,
            script=None,
            timeout=60,
            script_env=load_env(target.url, 2, "2s", 5, 0, tmp_path / "summary.json"),
        )
        run = (await run_plan(plan, LocalK6Backend(work_dir=tmp_path))).outcome
        window = f"{math.ceil(run.ended_at - run.started_at) + 1}s"
        names = (
            f'count by (__name__) (last_over_time({{keptn_context="{tags.context}"}}[{window}]))'
        )
        at_exit = {s["metric"]["__name__"] for s in await store.query(names, at=run.ended_at)}

        waited = await store.settle()
        settled = {s["metric"]["__name__"] for s in await store.query(names, at=run.ended_at)}

    assert settled >= RUN_FAMILIES
    assert not at_exit >= RUN_FAMILIES  # what settle() is for
    assert 0 < waited < 15
